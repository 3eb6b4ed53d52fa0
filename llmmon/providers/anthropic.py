"""The Anthropic Messages API: ``POST {url}/v1/messages``, streamed as typed SSE events
(``message_start`` … ``content_block_delta`` … ``message_delta`` … ``message_stop``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import SecretStr

from llmmon.config import ApiVersion, EndpointConfig, Prompt
from llmmon.providers.base import (
    Delta,
    Event,
    FramedDecoder,
    ProtocolError,
    Provider,
    RequestSpec,
    Served,
    Usage,
    count,
    field,
    load_object,
    merge,
    text_of,
)


class AnthropicConfig(EndpointConfig):
    provider: Literal["anthropic"]
    anthropic_version: ApiVersion = "2023-06-01"


class _StreamDecoder(FramedDecoder):
    terminator = "message_stop"

    def __init__(self) -> None:
        super().__init__()
        self._start = Usage(None, None)

    def message(self, data: str | bytes) -> list[Event]:
        obj = load_object(data)
        kind = obj.get("type")  # "error" events were refused by load_object
        if kind == "message_start":
            message = field(obj, "message")
            self._start = _usage(field(message, "usage"))
            return [Served(model)] if (model := text_of(message, "model")) else []
        elif kind == "content_block_delta":
            delta = field(obj, "delta")
            if delta.get("type") == "text_delta" and (text := text_of(delta, "text")):
                return [Delta(text)]
            if delta.get("type") == "thinking_delta" and (text := text_of(delta, "thinking")):
                return [Delta(text, reasoning=True)]
        elif kind == "message_delta":
            # Its usage is cumulative; prompt counts may be only in message_start's.
            usage = _usage(field(obj, "usage"))
            start = self._start
            return [Usage(usage.prompt_tokens or start.prompt_tokens, usage.output_tokens,
                          usage.cached_tokens or start.cached_tokens,
                          usage.cache_write_tokens or start.cache_write_tokens)]
        elif kind == "message_stop":
            self.done = True
        return []  # ping, content_block_start/stop, signature deltas: no tokens


class Anthropic(Provider[AnthropicConfig]):
    config = AnthropicConfig
    decoder = _StreamDecoder

    def request(self, endpoint: AnthropicConfig, prompt: Prompt, key: SecretStr | None
                ) -> RequestSpec:
        headers = {"anthropic-version": endpoint.anthropic_version}
        if key:
            headers["x-api-key"] = key.get_secret_value()
        body: dict[str, Any] = {
            "model": endpoint.model,
            "max_tokens": prompt.max_tokens or endpoint.max_tokens,
            "stream": endpoint.stream,
            "messages": [{"role": "user", "content": prompt.text}],
        }
        if endpoint.temperature is not None:
            body["temperature"] = endpoint.temperature
        if endpoint.system:
            body["system"] = endpoint.system
        return RequestSpec(endpoint.url + "/v1/messages", headers,
                           merge(body, endpoint.extra_body))

    def parse_body(self, endpoint: AnthropicConfig, body: bytes) -> list[Event]:
        message = load_object(body)
        blocks = message.get("content")
        events: list[Event] = []
        if model := text_of(message, "model"):
            events.append(Served(model))
        for block in blocks if isinstance(blocks, list) else []:
            if not isinstance(block, dict):
                raise ProtocolError("content block is not an object")
            if block.get("type") == "thinking":
                events.append(Delta(text_of(block, "thinking"), reasoning=True))
            elif block.get("type") == "text":
                events.append(Delta(text_of(block, "text")))
        events.append(_usage(field(message, "usage")))
        return [e for e in events if not isinstance(e, Delta) or e.text]


def _usage(usage: dict[str, Any]) -> Usage:
    """Anthropic's input_tokens leave out cached tokens; llmmon's prompt tokens include
    them, as OpenAI's do."""
    read, written = count(usage.get("cache_read_input_tokens")), \
        count(usage.get("cache_creation_input_tokens"))
    prompt = count(usage.get("input_tokens"))
    if prompt is not None:
        prompt += (read or 0) + (written or 0)
    return Usage(prompt, count(usage.get("output_tokens")), read, written)
