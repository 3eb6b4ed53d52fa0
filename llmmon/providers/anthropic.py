"""The Anthropic Messages API: ``POST {url}/v1/messages``, streamed as typed SSE events
(``message_start`` … ``content_block_delta`` … ``message_delta`` … ``message_stop``)."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from llmmon.config import ApiVersion, EndpointConfig, Prompt
from llmmon.providers.base import (
    Delta,
    Event,
    FramedDecoder,
    ProtocolError,
    Provider,
    RequestSpec,
    Usage,
    count,
    field,
    load_object,
    text_of,
)


class AnthropicConfig(EndpointConfig):
    provider: Literal["anthropic"]
    anthropic_version: ApiVersion = "2023-06-01"


class _StreamDecoder(FramedDecoder):
    terminator = "message_stop"

    def __init__(self) -> None:
        super().__init__()
        self._prompt_tokens: int | None = None

    def message(self, data: str | bytes) -> list[Event]:
        obj = load_object(data)
        kind = obj.get("type")  # "error" events were refused by load_object
        if kind == "message_start":
            usage = field(field(obj, "message"), "usage")
            self._prompt_tokens = count(usage.get("input_tokens"))
        elif kind == "content_block_delta":
            delta = field(obj, "delta")
            if delta.get("type") == "text_delta" and (text := text_of(delta, "text")):
                return [Delta(text)]
            if delta.get("type") == "thinking_delta" and (text := text_of(delta, "thinking")):
                return [Delta(text, reasoning=True)]
        elif kind == "message_delta":
            usage = field(obj, "usage")
            prompt = count(usage.get("input_tokens")) or self._prompt_tokens
            return [Usage(prompt, count(usage.get("output_tokens")))]
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
        body = {
            "model": endpoint.model,
            "max_tokens": prompt.max_tokens or endpoint.max_tokens,
            "temperature": 0,
            "stream": endpoint.stream,
            "messages": [{"role": "user", "content": prompt.text}],
        }
        return RequestSpec(endpoint.url + "/v1/messages", headers, body)

    def parse_body(self, endpoint: AnthropicConfig, body: bytes) -> list[Event]:
        message = load_object(body)
        blocks = message.get("content")
        events: list[Event] = []
        for block in blocks if isinstance(blocks, list) else []:
            if not isinstance(block, dict):
                raise ProtocolError("content block is not an object")
            if block.get("type") == "thinking":
                events.append(Delta(text_of(block, "thinking"), reasoning=True))
            elif block.get("type") == "text":
                events.append(Delta(text_of(block, "text")))
        usage = field(message, "usage")
        events.append(Usage(count(usage.get("input_tokens")), count(usage.get("output_tokens"))))
        return [e for e in events if not isinstance(e, Delta) or e.text]
