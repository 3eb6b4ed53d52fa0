"""OpenAI-compatible chat completions and completions (vLLM, llama.cpp, TGI /v1, Ollama /v1,
LiteLLM, OpenAI itself), streamed as SSE ending with ``data: [DONE]`` or as one JSON body."""

from __future__ import annotations

import json
from typing import Any

from pydantic import SecretStr

from llmmon.config import OpenAIEndpoint, Prompt
from llmmon.providers import Delta, Event, ProtocolError, RequestSpec, Usage
from llmmon.sse import SSEError, SSEParser


class OpenAI:
    stream_content_types: tuple[str, ...] = ("text/event-stream",)

    def request(self, endpoint: OpenAIEndpoint, prompt: Prompt, key: SecretStr | None
                ) -> RequestSpec:
        body: dict[str, Any] = {
            "model": endpoint.model,
            "max_tokens": prompt.max_tokens or endpoint.max_tokens,
            "temperature": 0,
            "stream": endpoint.stream,
        }
        if endpoint.stream:
            body["stream_options"] = {"include_usage": True}
        if endpoint.api == "chat":
            body["messages"] = [{"role": "user", "content": prompt.text}]
            path = "/chat/completions"
        else:
            body["prompt"] = prompt.text
            path = "/completions"
        headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
        return RequestSpec(endpoint.url + path, headers, body)

    def stream_decoder(self, endpoint: OpenAIEndpoint) -> _StreamDecoder:
        return _StreamDecoder()

    def parse_body(self, endpoint: OpenAIEndpoint, body: bytes) -> list[Event]:
        return _events(_json(body))


class _StreamDecoder:
    def __init__(self) -> None:
        self._sse = SSEParser()
        self._done = False

    def feed(self, chunk: bytes) -> list[Event]:
        try:
            sse_events = self._sse.feed(chunk)
        except SSEError as exc:
            raise ProtocolError(str(exc)) from None
        events: list[Event] = []
        for sse in sse_events:
            if self._done:
                raise ProtocolError("data after [DONE]")
            if sse.data.strip() == "[DONE]":
                self._done = True
                continue
            events += _events(_json(sse.data))
        return events

    def finish(self) -> None:
        if not self._done:
            raise ProtocolError("stream ended without [DONE]")


def _json(data: str | bytes) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("invalid JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("JSON is not an object")
    if "error" in obj:
        raise ProtocolError("server sent an error event")
    return obj


def _events(obj: dict[str, Any]) -> list[Event]:
    """Deltas and usage from one chunk, or from a whole non-streamed response."""
    events: list[Event] = []
    choices = obj.get("choices") or []
    if not isinstance(choices, list):
        raise ProtocolError("choices is not a list")
    for choice in choices[:1]:  # one completion was asked for
        if not isinstance(choice, dict):
            raise ProtocolError("choice is not an object")
        part = choice.get("delta") or choice.get("message") or {}
        if not isinstance(part, dict):
            raise ProtocolError("delta is not an object")
        # vLLM and DeepSeek say reasoning_content, others reasoning.
        reasoning = part.get("reasoning_content") or part.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            events.append(Delta(reasoning, reasoning=True))
        text = part.get("content") if part else choice.get("text")
        if isinstance(text, str) and text:
            events.append(Delta(text))
    usage = obj.get("usage")
    if isinstance(usage, dict):
        events.append(Usage(_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))))
    return events


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

