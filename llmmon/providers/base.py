"""What every wire API shares. A provider builds a request and turns response bytes into
events; it knows nothing of clocks, deadlines or Prometheus (the probe owns those)."""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import SecretStr

from llmmon.config import EndpointConfig, Prompt
from llmmon.providers.ndjson import NDJSONError, NDJSONSplitter
from llmmon.providers.sse import SSEError, SSEParser


class ProtocolError(ValueError):
    """The response does not follow the provider's wire format."""

@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of generated text; ``reasoning`` marks thinking tokens, not the answer."""

    text: str
    reasoning: bool = False


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int | None
    output_tokens: int | None


Event = Delta | Usage


@dataclass(frozen=True)
class RequestSpec:
    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    params: dict[str, str] | None = None


class Framing(Protocol):
    """How a stream is cut into messages: SSE events' data, or NDJSON lines."""

    def messages(self, chunk: bytes) -> list[str] | list[bytes]: ...

    def complete(self) -> bool:
        """False when the stream stopped inside a message."""


class SSEFraming:
    def __init__(self) -> None:
        self._parser = SSEParser()

    def messages(self, chunk: bytes) -> list[str]:
        return [event.data for event in self._parser.feed(chunk)]

    def complete(self) -> bool:
        return True  # an unterminated event is dropped, as the SSE spec says


class NDJSONFraming:
    def __init__(self) -> None:
        self._lines = NDJSONSplitter()

    def messages(self, chunk: bytes) -> list[bytes]:
        return self._lines.feed(chunk)

    def complete(self) -> bool:
        return not self._lines.pending


class FramedDecoder(abc.ABC):
    """The framing every streamed API shares: split the bytes into messages, refuse anything
    after the terminator, and insist on one."""

    terminator: ClassVar[str] = "its terminator"
    framing: ClassVar[type[Framing]] = SSEFraming

    def __init__(self) -> None:
        self.done = False
        self._framing = self.framing()

    def feed(self, chunk: bytes) -> list[Event]:
        try:
            messages = self._framing.messages(chunk)
        except (SSEError, NDJSONError) as exc:
            raise ProtocolError(str(exc)) from None
        events: list[Event] = []
        for message in messages:
            if self.done:
                raise ProtocolError(f"data after {self.terminator}")
            events += self.message(message)
        return events

    @abc.abstractmethod
    def message(self, data: str | bytes) -> list[Event]:
        """The events of one message; sets ``done`` at the terminator."""

    def finish(self) -> None:
        if not self.done or not self._framing.complete():
            raise ProtocolError(f"stream ended without {self.terminator}")


class StreamDecoder(Protocol):
    def feed(self, chunk: bytes) -> list[Event]:
        """Events completed by this chunk of the response body."""

    def finish(self) -> None:
        """Raise ProtocolError if the stream ended before its terminator."""


C = TypeVar("C", bound=EndpointConfig)


class Provider(abc.ABC, Generic[C]):
    """One wire API. ``config`` is its endpoint config class (tagged by ``provider``),
    ``decoder`` its stream decoder."""

    config: ClassVar[type[EndpointConfig]]
    decoder: ClassVar[type[FramedDecoder]]
    # Content types a successful streamed response may carry; anything else (an HTML error
    # page from a proxy, say) is a protocol error.
    stream_content_types: ClassVar[tuple[str, ...]] = ("text/event-stream",)

    @abc.abstractmethod
    def request(self, endpoint: C, prompt: Prompt, key: SecretStr | None) -> RequestSpec:
        """The HTTP request that asks ``endpoint`` for ``prompt``."""

    @abc.abstractmethod
    def parse_body(self, endpoint: C, body: bytes) -> list[Event]:
        """The events of a response that was not streamed."""

    def stream_decoder(self, endpoint: C) -> StreamDecoder:
        return self.decoder()


def load_object(data: str | bytes) -> dict[str, Any]:
    """A JSON object from the wire. Anything else is a protocol error, and so is an error
    object: every provider's carries an "error" key (Anthropic's also has type "error")."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("invalid JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("JSON is not an object")
    if obj.get("error") is not None:  # some servers send "error": null on success
        raise ProtocolError("server sent an error")
    return obj


def field(obj: dict[str, Any], key: str) -> dict[str, Any]:
    """``obj[key]`` when it is an object, else an empty one: servers omit and null fields."""
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def text_of(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def count(value: object) -> int | None:
    """A token count, if the value is one."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
