"""OpenAI-compatible chat completions and completions (vLLM, llama.cpp, TGI /v1, Ollama /v1,
LiteLLM, OpenAI itself), streamed as SSE ending with ``data: [DONE]`` or as one JSON body."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import SecretStr

from llmmon.config import ApiVersion, EndpointConfig, Prompt
from llmmon.providers.base import (
    Delta,
    EndOfSequence,
    Event,
    FramedDecoder,
    ProtocolError,
    Provider,
    RequestSpec,
    Served,
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


class OpenAIConfig(EndpointConfig):
    provider: Literal["openai"]
    api: Literal["chat", "completions"] = "chat"
    # Azure OpenAI: set the api-version; the key then goes in an `api-key` header and the
    # url is the deployment's, e.g. https://NAME.openai.azure.com/openai/deployments/DEPLOYMENT
    api_version: ApiVersion | None = None
    # OpenAI's reasoning models refuse max_tokens and take max_completion_tokens.
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    # Ask for a usage chunk at the end of the stream; older Azure API versions refuse it.
    stream_options: bool = True


class _StreamDecoder(FramedDecoder):
    terminator = "[DONE]"

    def __init__(self) -> None:
        super().__init__()
        self._served = False

    def message(self, data: str | bytes) -> list[Event]:
        if str(data).strip() == "[DONE]":
            self.done = True
            return []
        obj = load_object(data)
        events = _events(obj, served=not self._served)
        self._served = self._served or any(isinstance(e, Served) for e in events)
        return events


class OpenAI(Provider[OpenAIConfig]):
    config = OpenAIConfig
    decoder = _StreamDecoder

    def request(self, endpoint: OpenAIConfig, prompt: Prompt, key: SecretStr | None
                ) -> RequestSpec:
        body: dict[str, Any] = {
            "model": endpoint.model,
            endpoint.max_tokens_field: prompt.max_tokens or endpoint.max_tokens,
            "stream": endpoint.stream,
        }
        if endpoint.temperature is not None:
            body["temperature"] = endpoint.temperature
        if endpoint.stream and endpoint.stream_options:
            body["stream_options"] = {"include_usage": True}
        if endpoint.api == "chat":
            body["messages"] = chat(endpoint, prompt)
            path = "/chat/completions"
        else:
            body["prompt"] = f"{endpoint.system}\n\n{prompt.text}" if endpoint.system \
                else prompt.text
            path = "/completions"
        headers, params = {}, None
        if endpoint.api_version:  # Azure OpenAI
            params = {"api-version": endpoint.api_version}
            if key:
                headers["api-key"] = key.get_secret_value()
        else:
            headers = bearer(key)
        return RequestSpec(endpoint.url + path, headers, merge(body, endpoint.extra_body),
                           params)

    def parse_body(self, endpoint: OpenAIConfig, body: bytes) -> list[Event]:
        return _events(load_object(body), served=True)


def _events(obj: dict[str, Any], served: bool) -> list[Event]:
    """Deltas and usage from one chunk, or from a whole non-streamed response; the served
    model too when ``served``."""
    events: list[Event] = []
    if served and (model := text_of(obj, "model")):
        events.append(Served(model))
    choices = obj.get("choices") or []
    if not isinstance(choices, list):
        raise ProtocolError("choices is not a list")
    for choice in choices[:1]:  # one completion was asked for
        if not isinstance(choice, dict):
            raise ProtocolError("choice is not an object")
        part = field(choice, "delta") or field(choice, "message")
        # vLLM and DeepSeek say reasoning_content, others reasoning.
        reasoning = text_of(part, "reasoning_content") or text_of(part, "reasoning")
        if reasoning:
            events.append(Delta(reasoning, reasoning=True))
        text = text_of(part, "content") if part else text_of(choice, "text")
        if text:
            events.append(Delta(text))
        elif not reasoning and choice.get("finish_reason") == "stop":
            events.append(EndOfSequence())
    # Before the usage: a cached_tokens the usage itself gives wins over timings' cache_n.
    if "timings" in obj:  # llama-server's last chunk; skipped on every other one
        events += _timings(field(obj, "timings"))
    usage = field(obj, "usage")
    if usage:
        details = field(usage, "prompt_tokens_details")
        events.append(Usage(count(usage.get("prompt_tokens")),
                            count(usage.get("completion_tokens")),
                            count(details.get("cached_tokens"))))
    return events


def _timings(timings: dict[str, Any]) -> list[Event]:
    """llama-server's own timing, in the last chunk or the whole body: prompt and generation
    milliseconds, and ``cache_n``, the prompt tokens its prompt cache served."""
    events = [*server_timing("prefill", timings.get("prompt_ms"), 1e-3),
              *server_timing("decode", timings.get("predicted_ms"), 1e-3)]
    if (cached := count(timings.get("cache_n"))) is not None:
        events.append(Usage(None, None, cached))
    return events
