"""Hugging Face TGI's native API: ``POST {url}/generate_stream``, SSE events carrying one
token each; the last also carries ``generated_text`` and ``details``. Not streamed:
``POST {url}/generate``. (TGI's OpenAI-compatible ``/v1`` is the ``openai`` provider.)"""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from llmmon.config import EndpointConfig, Prompt
from llmmon.providers.base import (
    Delta,
    Event,
    FramedDecoder,
    Provider,
    RequestSpec,
    Usage,
    count,
    field,
    load_object,
    text_of,
)


class TGIConfig(EndpointConfig):
    provider: Literal["tgi"]


class _StreamDecoder(FramedDecoder):
    terminator = "the final event"

    def message(self, data: str | bytes) -> list[Event]:
        obj = load_object(data)
        token = field(obj, "token")
        events: list[Event] = []
        # Special tokens (end of sequence) are not text a user sees.
        if token.get("special") is not True and (text := text_of(token, "text")):
            events.append(Delta(text))
        if obj.get("generated_text") is not None:
            self.done = True
            events.append(Usage(None, count(field(obj, "details").get("generated_tokens"))))
        return events


class TGI(Provider[TGIConfig]):
    config = TGIConfig
    decoder = _StreamDecoder

    def request(self, endpoint: TGIConfig, prompt: Prompt, key: SecretStr | None
                ) -> RequestSpec:
        headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
        body = {
            "inputs": prompt.text,
            "parameters": {"max_new_tokens": prompt.max_tokens or endpoint.max_tokens,
                           "do_sample": False, "details": True},
        }
        path = "/generate_stream" if endpoint.stream else "/generate"
        return RequestSpec(endpoint.url + path, headers, body)

    def parse_body(self, endpoint: TGIConfig, body: bytes) -> list[Event]:
        obj = load_object(body)
        text = text_of(obj, "generated_text")
        generated = count(field(obj, "details").get("generated_tokens"))
        return [*([Delta(text)] if text else []), Usage(None, generated)]
