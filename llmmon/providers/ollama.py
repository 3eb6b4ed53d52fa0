"""Ollama's native chat API: ``POST {url}/api/chat``, streamed as NDJSON objects; the last
has ``done: true``, Ollama's own counts (``prompt_eval_count``, ``eval_count``) and durations."""

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
    Served,
    ServerPhase,
    Usage,
    bearer,
    chat,
    count,
    field,
    load_object,
    merge,
    server_timing,
    text_of,
)

_GO_DURATION = r"^-?\d+(\.\d+)?(ns|us|ms|s|m|h)?(\d+(\.\d+)?(ns|us|ms|s|m|h))*$"
KeepAlive = Annotated[str, Field(pattern=_GO_DURATION)] | int
# The last line's durations, in nanoseconds (docs.ollama.com/api/usage).
DURATIONS: dict[str, ServerPhase] = {"total_duration": "total", "load_duration": "load",
                                     "prompt_eval_duration": "prefill", "eval_duration": "decode"}


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
        if self.done:  # every line names the model: the last one is enough
            return [*_served(obj), *_events(obj)]
        return _events(obj)


class Ollama(Provider[OllamaConfig]):
    config = OllamaConfig
    decoder = _StreamDecoder
    stream_content_types = ("application/x-ndjson", "application/json")

    def request(self, endpoint: OllamaConfig, prompt: Prompt, key: SecretStr | None
                ) -> RequestSpec:
        # Ollama itself takes no key; a proxy in front of it may want a bearer token.
        options: dict[str, Any] = {"num_predict": prompt.max_tokens or endpoint.max_tokens}
        if endpoint.temperature is not None:
            options["temperature"] = endpoint.temperature
        body: dict[str, Any] = {"model": endpoint.model, "messages": chat(endpoint, prompt),
                                "stream": endpoint.stream, "options": options}
        if endpoint.keep_alive is not None:
            body["keep_alive"] = endpoint.keep_alive
        return RequestSpec(endpoint.url + "/api/chat", bearer(key),
                           merge(body, endpoint.extra_body))

    def parse_body(self, endpoint: OllamaConfig, body: bytes) -> list[Event]:
        obj = load_object(body)
        return [*_served(obj), *_events(obj)]


def _served(obj: dict[str, Any]) -> list[Event]:
    return [Served(model)] if (model := text_of(obj, "model")) else []


def _events(obj: dict[str, Any]) -> list[Event]:
    message = field(obj, "message")
    events: list[Event] = []
    if thinking := text_of(message, "thinking"):
        events.append(Delta(thinking, reasoning=True))
    if content := text_of(message, "content"):
        events.append(Delta(content))
    if obj.get("done") is True:
        events.append(Usage(count(obj.get("prompt_eval_count")), count(obj.get("eval_count"))))
        for key, phase in DURATIONS.items():
            events += server_timing(phase, obj.get(key), 1e-9)
    return events
