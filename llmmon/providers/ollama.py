"""Ollama's native chat API: ``POST {url}/api/chat``, streamed as NDJSON objects; the last
has ``done: true`` and Ollama's own counts (``prompt_eval_count``, ``eval_count``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr

from llmmon.config import EndpointConfig, Prompt
from llmmon.providers.base import (
    Delta,
    Event,
    FramedDecoder,
    NDJSONFraming,
    Provider,
    RequestSpec,
    Usage,
    count,
    field,
    load_object,
    text_of,
)

KeepAlive = Annotated[str, Field(pattern=r"^-?\d+(\.\d+)?(ns|us|ms|s|m|h)?(\d+(\.\d+)?(ns|us|ms|s|m|h))*$")] | int


class OllamaConfig(EndpointConfig):
    provider: Literal["ollama"]
    # How long Ollama keeps the model loaded after the probe: a Go duration ("5m", "1h",
    # "-1" for ever) or seconds. Unset: the server's default.
    keep_alive: KeepAlive | None = None


class _StreamDecoder(FramedDecoder):
    terminator = '"done": true'
    framing = NDJSONFraming

    def message(self, data: str | bytes) -> list[Event]:
        obj = load_object(data)
        self.done = obj.get("done") is True
        return _events(obj)


class Ollama(Provider[OllamaConfig]):
    config = OllamaConfig
    decoder = _StreamDecoder
    stream_content_types = ("application/x-ndjson", "application/json")

    def request(self, endpoint: OllamaConfig, prompt: Prompt, key: SecretStr | None
                ) -> RequestSpec:
        # Ollama itself takes no key; a proxy in front of it may want a bearer token.
        headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
        body = {
            "model": endpoint.model,
            "messages": [{"role": "user", "content": prompt.text}],
            "stream": endpoint.stream,
            "options": {"temperature": 0, "num_predict": prompt.max_tokens or endpoint.max_tokens},
        }
        return RequestSpec(endpoint.url + "/api/chat", headers, body)

    def parse_body(self, endpoint: OllamaConfig, body: bytes) -> list[Event]:
        return _events(load_object(body))


def _events(obj: dict[str, Any]) -> list[Event]:
    message = field(obj, "message")
    events: list[Event] = []
    if thinking := text_of(message, "thinking"):
        events.append(Delta(thinking, reasoning=True))
    if content := text_of(message, "content"):
        events.append(Delta(content))
    if obj.get("done") is True:
        events.append(Usage(count(obj.get("prompt_eval_count")), count(obj.get("eval_count"))))
    return events
