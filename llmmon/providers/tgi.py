"""Hugging Face TGI's native API: ``POST {url}/generate_stream``, SSE events carrying one
token each; the last also carries ``generated_text`` and ``details``. Not streamed:
``POST {url}/generate``, whose timing comes in headers (``x-queue-time``, ``x-total-time``:
read with the other headers, in ``probe/result.py``). (TGI's OpenAI-compatible ``/v1`` is
the ``openai`` provider.)"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import SecretStr

from llmmon.config import EndpointConfig, Prompt
from llmmon.providers.base import (
    Delta,
    EndOfSequence,
    Event,
    FramedDecoder,
    Provider,
    RequestSpec,
    Usage,
    bearer,
    count,
    field,
    load_object,
    merge,
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
        # Special tokens (end of sequence) are not text a user sees, but TGI counts them.
        if token.get("special") is True:
            events.append(EndOfSequence())
        elif text := text_of(token, "text"):
            events.append(Delta(text))
        if obj.get("generated_text") is not None:
            self.done = True
            events.append(_usage(field(obj, "details")))
        return events


class TGI(Provider[TGIConfig]):
    config = TGIConfig
    decoder = _StreamDecoder

    def request(self, endpoint: TGIConfig, prompt: Prompt, key: SecretStr | None
                ) -> RequestSpec:
        parameters: dict[str, Any] = {"max_new_tokens": prompt.max_tokens or endpoint.max_tokens,
                                      "details": True}
        # TGI wants a temperature above 0, or greedy decoding without one.
        if endpoint.temperature:
            parameters.update(do_sample=True, temperature=endpoint.temperature)
        else:
            parameters["do_sample"] = False
        # The native API takes raw text: no chat template, so the system prompt leads it.
        text = f"{endpoint.system}\n\n{prompt.text}" if endpoint.system else prompt.text
        body = {"inputs": text, "parameters": parameters}
        path = "/generate_stream" if endpoint.stream else "/generate"
        return RequestSpec(endpoint.url + path, bearer(key), merge(body, endpoint.extra_body))

    def parse_body(self, endpoint: TGIConfig, body: bytes) -> list[Event]:
        obj = load_object(body)
        text = text_of(obj, "generated_text")
        return [*([Delta(text)] if text else []), _usage(field(obj, "details"))]


def _usage(details: dict[str, Any]) -> Usage:
    # input_length: TGI's streamed details (2.x) carry the prompt's token count.
    return Usage(count(details.get("input_length")), count(details.get("generated_tokens")))
