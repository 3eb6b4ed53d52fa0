"""What every wire API shares. A provider builds a request and turns response bytes into
events; it knows nothing of clocks, deadlines or Prometheus (the probe owns those)."""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

import orjson
from pydantic import SecretStr

from llmmon.config import EndpointConfig, Prompt
from llmmon.providers.ndjson import NDJSONError, NDJSONSplitter
from llmmon.providers.sse import SSEError, SSEParser


class ProtocolError(ValueError):
    """The response does not follow the provider's wire format."""


class ServerError(ProtocolError):
    """The server reported an error in a well-formed error object (inside a stream or in a
    body). ``status`` is the HTTP status the same error gets when not streamed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# Error types to the status each server gives them outside a stream: OpenAI's and
# Anthropic's `error.type` / `error.code`, TGI's `error_type` (its server.rs).
ERROR_STATUS = {
    "invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429,
    "rate_limit_exceeded": 429, "insufficient_quota": 429, "api_error": 500, "server_error": 500,
    "overloaded_error": 529, "validation": 422, "overloaded": 429, "generation": 424,
    "incomplete_generation": 500, "template_error": 422, "tool_error": 422}
MAX_TOKENS = 10**9  # a token count above this is nonsense, treated as absent
MAX_SERVER_SECONDS = 86400.0  # a server's timing above a day is nonsense, treated as absent
# Where a server says its time went: label values, so a fixed set, never a response's key name.
ServerPhase = Literal["queue", "prefill", "decode", "load", "total", "upstream"]

@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of generated text; ``reasoning`` marks thinking tokens, not the answer."""

    text: str
    reasoning: bool = False


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the server reports them. ``prompt_tokens`` includes cached ones:
    ``cached_tokens`` read from a prompt cache, ``cache_write_tokens`` written to one."""

    prompt_tokens: int | None
    output_tokens: int | None
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Served:
    """The model the server says answered."""

    model: str


@dataclass(frozen=True, slots=True)
class EndOfSequence:
    """A chunk that ends generation with no text: the end-of-sequence token, which vLLM,
    TGI and SGLang count in their usage but send empty."""


@dataclass(frozen=True, slots=True)
class ServerTiming:
    """Seconds the server says it spent in one phase of this request (``server_timing``)."""

    phase: ServerPhase
    seconds: float


Event = Delta | Usage | Served | EndOfSequence | ServerTiming


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
    """A JSON object from the wire, else a protocol error; an error object raises
    ``ServerError``. orjson (4x json's speed); what it refuses, json reads as ever."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ProtocolError("invalid JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("JSON is not an object")
    if obj.get("error") is not None:  # some servers send "error": null on success
        raise server_error(obj)
    return obj


def server_error(obj: dict[str, Any]) -> ServerError:
    """The error an error object reports, classified by its code, type or TGI error_type;
    500 when it names none."""
    error = obj.get("error")
    if isinstance(error, dict):
        message = text_of(error, "message")
        status = _status(error.get("code")) or _status(error.get("status"))
        # OpenAI puts the precise kind in code ("rate_limit_exceeded") and a broad one in type
        known = [k for k in (text_of(error, "code"), text_of(error, "type")) if k in ERROR_STATUS]
        kind = known[0] if known else text_of(error, "type")
    else:
        message = error if isinstance(error, str) else ""
        status, kind = None, text_of(obj, "error_type")
    return ServerError(status or ERROR_STATUS.get(kind, 500), (message or kind or "error")[:2000])


def error_message(body: bytes) -> str:
    """The message of an error response's body: the JSON error's message, else the text."""
    text = body.decode("utf-8", "replace")
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return text
    if isinstance(obj, dict):
        if obj.get("error") is not None:
            return server_error(obj).message
        for key in ("message", "detail"):  # FastAPI and others
            if isinstance(obj.get(key), str):
                return str(obj[key])
    return text


def merge(body: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` merged into ``body``, nested objects key by key (``extra_body``)."""
    out = dict(body)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def bearer(key: SecretStr | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}


def chat(endpoint: EndpointConfig, prompt: Prompt) -> list[dict[str, str]]:
    """The messages of a chat request: the endpoint's system prompt, then the prompt."""
    system = [{"role": "system", "content": endpoint.system}] if endpoint.system else []
    return [*system, {"role": "user", "content": prompt.text}]


def _status(value: object) -> int | None:
    """An HTTP error status from a code field: vLLM sends 503, LiteLLM "500"."""
    if isinstance(value, str) and value.isdigit() and len(value) == 3:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599:
        return value
    return None


def field(obj: dict[str, Any], key: str) -> dict[str, Any]:
    """``obj[key]`` when it is an object, else an empty one: servers omit and null fields."""
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def text_of(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def server_timing(phase: ServerPhase, value: object, unit: float) -> list[Event]:
    """A ServerTiming from a number of ``unit`` seconds if it is plausible (NaN fails both
    comparisons), else none: a server's timing is a second opinion, never a probe's failure."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return []
    try:
        seconds = value * unit
    except OverflowError:  # an integer too large for a float
        return []
    return [ServerTiming(phase, seconds)] if 0 <= seconds <= MAX_SERVER_SECONDS else []


def count(value: object) -> int | None:
    """A token count, if the value is a plausible one."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKENS:
        return value
    return None
