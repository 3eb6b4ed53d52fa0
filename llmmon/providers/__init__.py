"""Wire APIs. A provider builds a request and turns response bytes into events; it knows
nothing of clocks, deadlines or Prometheus (the probe owns those)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import SecretStr

from llmmon.config import EndpointBase, Prompt


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


def get_provider(endpoint: EndpointBase) -> Provider:
    from llmmon.providers import openai

    providers: dict[str, Provider] = {"openai": openai.OpenAI()}
    name = getattr(endpoint, "provider", "")
    if name not in providers:
        raise ProtocolError(f"provider {name} is not available in this build")
    return providers[name]
