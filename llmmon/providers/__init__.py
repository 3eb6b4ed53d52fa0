"""Wire APIs. A provider builds a request and turns response bytes into events; it knows
nothing of clocks, deadlines or Prometheus (the probe owns those)."""

from __future__ import annotations

import abc
import functools
import json
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import SecretStr

from llmmon.config import EndpointBase, Prompt
from llmmon.ndjson import NDJSONError, NDJSONSplitter
from llmmon.sse import SSEError, SSEParser


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


class FramedDecoder(abc.ABC):
    """The framing every streamed API shares: split the bytes into messages (SSE events'
    data, or NDJSON lines), refuse anything after the terminator, and insist on one."""

    terminator = "its terminator"
    ndjson = False  # NDJSON lines (Ollama) rather than SSE events

    def __init__(self) -> None:
        self.done = False
        self._lines = NDJSONSplitter() if self.ndjson else None
        self._sse = None if self.ndjson else SSEParser()

    def _messages(self, chunk: bytes) -> list[str | bytes]:
        try:
            if self._lines is not None:
                return list(self._lines.feed(chunk))
            assert self._sse is not None
            return [event.data for event in self._sse.feed(chunk)]
        except (SSEError, NDJSONError) as exc:
            raise ProtocolError(str(exc)) from None

    def feed(self, chunk: bytes) -> list[Event]:
        messages = self._messages(chunk)
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
        pending = self._lines.pending if self._lines is not None else False
        if not self.done or pending:
            raise ProtocolError(f"stream ended without {self.terminator}")


class StreamDecoder(Protocol):
    def feed(self, chunk: bytes) -> list[Event]:
        """Events completed by this chunk of the response body."""

    def finish(self) -> None:
        """Raise ProtocolError if the stream ended before its terminator."""


class Provider(Protocol):
    # Content types a successful response may carry; anything else (an HTML error page
    # from a proxy, say) is a protocol error.
    stream_content_types: tuple[str, ...]

    def request(self, endpoint: Any, prompt: Prompt, key: SecretStr | None) -> RequestSpec: ...

    def stream_decoder(self, endpoint: Any) -> StreamDecoder: ...

    def parse_body(self, endpoint: Any, body: bytes) -> list[Event]: ...


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


@functools.cache
def _providers() -> dict[str, Provider]:
    from llmmon.providers import anthropic, ollama, openai, tgi

    return {
        "openai": openai.OpenAI(),
        "anthropic": anthropic.Anthropic(),
        "ollama": ollama.Ollama(),
        "tgi": tgi.TGI(),
    }


def get_provider(endpoint: EndpointBase) -> Provider:
    """The provider named by the endpoint's ``provider`` key (one map entry per module)."""
    return _providers()[getattr(endpoint, "provider", "")]
