"""The wire formats the simulator speaks: OpenAI chat and completions, Anthropic Messages,
Ollama's native chat and TGI's native generate. Each turns the simulated model's tokens into
the bytes that API's real servers send, the servers' own timing included: ``delays`` are the
seconds the simulator waited before each chunk, the first being its "prefill"."""

from __future__ import annotations

import json
import time
from typing import Any


class Format:
    """Base: OpenAI chat completions."""

    content_type = "text/event-stream"

    def request(self, body: dict[str, Any]) -> tuple[str, int, bool]:
        """(prompt, max tokens, stream) from a request body; raises on a malformed one."""
        return str(body["messages"][-1]["content"]), _max_tokens(body), bool(body.get("stream"))

    def headers(self, delays: list[float]) -> dict[str, str]:
        """Headers of a response that was not streamed (TGI's timing)."""
        return {}

    def error(self, reason: str) -> bytes:
        """An error sent inside the stream, as vLLM does: its status in `code`."""
        code = {"rate_limited": 429, "http_4xx": 400}.get(reason, 503)
        return sse({"error": {"object": "error", "message": "simulated error in the stream",
                              "type": "ServiceUnavailableError", "code": code}})

    def opening(self, model: str) -> bytes:
        # Real servers open with a role-only chunk, which is not a token.
        return sse(self._chunk(model, {"delta": {"role": "assistant", "content": ""}}))

    def token(self, model: str, text: str, reasoning: bool, sent_ns: str) -> bytes:
        delta = {"reasoning_content": text} if reasoning else {"content": text}
        return sse(self._chunk(model, {"delta": delta}, x_sent_ns=sent_ns))

    def closing(self, model: str, usage: tuple[int, int], delays: list[float],
                terminate: bool = True, eos: bool = False) -> bytes:
        # With eos, the end-of-sequence token: counted in usage, sent as an empty chunk.
        end = sse(self._chunk(model, {"delta": {}, "finish_reason": "stop" if eos else "length"}))
        # llama-server's timings ride on the last chunk, the usage chunk
        tail = sse({"id": "sim", "object": "chat.completion.chunk", "created": _now(),
                    "model": model, "choices": [], "usage": _usage(*usage),
                    "timings": _timings(usage, delays)})
        return end + tail + (b"data: [DONE]\n\n" if terminate else b"")

    def whole(self, model: str, text: str, reasoning: str, usage: tuple[int, int],
              delays: list[float]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if reasoning:
            message["reasoning_content"] = reasoning
        return {"id": "sim", "object": "chat.completion", "created": _now(), "model": model,
                "choices": [{"index": 0, "finish_reason": "length", "message": message}],
                "usage": _usage(*usage), "timings": _timings(usage, delays)}

    def _chunk(self, model: str, choice: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"id": "sim", "object": "chat.completion.chunk", "created": _now(),
                "model": model, "choices": [{"index": 0, **choice}], **extra}


class Completions(Format):
    def request(self, body: dict[str, Any]) -> tuple[str, int, bool]:
        return str(body["prompt"]), _max_tokens(body), bool(body.get("stream"))

    def opening(self, model: str) -> bytes:
        return b""

    def token(self, model: str, text: str, reasoning: bool, sent_ns: str) -> bytes:
        return sse(self._chunk(model, {"text": text}, x_sent_ns=sent_ns))

    def whole(self, model: str, text: str, reasoning: str, usage: tuple[int, int],
              delays: list[float]) -> dict[str, Any]:
        return {"id": "sim", "object": "text_completion", "created": _now(), "model": model,
                "choices": [{"index": 0, "finish_reason": "length", "text": text}],
                "usage": _usage(*usage), "timings": _timings(usage, delays)}


class Anthropic(Format):
    def opening(self, model: str) -> bytes:
        start = {"type": "message_start", "message": {
            "id": "msg_sim", "type": "message", "role": "assistant", "content": [],
            "model": model, "stop_reason": None, "usage": {"input_tokens": 0, "output_tokens": 1}}}
        return (event("message_start", start) + event("ping", {"type": "ping"})
                + event("content_block_start", {"type": "content_block_start", "index": 0,
                                                "content_block": {"type": "text", "text": ""}}))

    def token(self, model: str, text: str, reasoning: bool, sent_ns: str) -> bytes:
        delta = ({"type": "thinking_delta", "thinking": text} if reasoning
                 else {"type": "text_delta", "text": text})
        return event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                             "delta": delta, "x_sent_ns": sent_ns})

    def error(self, reason: str) -> bytes:
        kind = {"rate_limited": "rate_limit_error", "http_4xx": "invalid_request_error"
                }.get(reason, "overloaded_error")
        return event("error", {"type": "error", "error": {"type": kind, "message": "Overloaded"}})

    def closing(self, model: str, usage: tuple[int, int], delays: list[float],
                terminate: bool = True, eos: bool = False) -> bytes:
        out = (event("content_block_stop", {"type": "content_block_stop", "index": 0})
               + event("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": "max_tokens"},
                                         "usage": {"input_tokens": usage[0],
                                                   "output_tokens": usage[1]}}))
        return out + (event("message_stop", {"type": "message_stop"}) if terminate else b"")

    def whole(self, model: str, text: str, reasoning: str, usage: tuple[int, int],
              delays: list[float]) -> dict[str, Any]:
        content = ([{"type": "thinking", "thinking": reasoning}] if reasoning else []) + [
            {"type": "text", "text": text}]
        return {"id": "msg_sim", "type": "message", "role": "assistant", "model": model,
                "content": content, "stop_reason": "max_tokens",
                "usage": {"input_tokens": usage[0], "output_tokens": usage[1]}}


class Ollama(Format):
    content_type = "application/x-ndjson"

    def request(self, body: dict[str, Any]) -> tuple[str, int, bool]:
        options = body.get("options") or {}
        return (str(body["messages"][-1]["content"]), int(options.get("num_predict") or 16),
                body.get("stream", True) is not False)

    def opening(self, model: str) -> bytes:
        return b""

    def token(self, model: str, text: str, reasoning: bool, sent_ns: str) -> bytes:
        message = {"role": "assistant", "content": "" if reasoning else text}
        if reasoning:
            message["thinking"] = text
        return line({"model": model, "created_at": "2026-01-01T00:00:00Z", "message": message,
                     "done": False, "x_sent_ns": sent_ns})

    def error(self, reason: str) -> bytes:
        return line({"error": "simulated error in the stream"})  # Ollama names no type

    def closing(self, model: str, usage: tuple[int, int], delays: list[float],
                terminate: bool = True, eos: bool = False) -> bytes:
        if not terminate:
            return b""
        return line({**self.whole(model, "", "", usage, delays),
                     "message": {"role": "assistant", "content": ""}})

    def whole(self, model: str, text: str, reasoning: str, usage: tuple[int, int],
              delays: list[float]) -> dict[str, Any]:
        message = {"role": "assistant", "content": text}
        if reasoning:
            message["thinking"] = reasoning
        prefill, decode = (round(seconds * 1e9) for seconds in _phases(delays))
        return {"model": model, "created_at": "2026-01-01T00:00:00Z", "message": message,
                "done": True, "done_reason": "length", "prompt_eval_count": usage[0],
                "eval_count": usage[1], "total_duration": prefill + decode,
                "load_duration": 0, "prompt_eval_duration": prefill, "eval_duration": decode}


class TGI(Format):
    def __init__(self, streaming: bool) -> None:
        self.streaming = streaming  # /generate_stream or /generate

    def request(self, body: dict[str, Any]) -> tuple[str, int, bool]:
        parameters = body.get("parameters") or {}
        return (str(body["inputs"]), int(parameters.get("max_new_tokens") or 16),
                self.streaming)

    def opening(self, model: str) -> bytes:
        return b""

    def token(self, model: str, text: str, reasoning: bool, sent_ns: str) -> bytes:
        return sse({"index": 1, "token": {"id": 1, "text": text, "logprob": -0.1,
                                          "special": False},
                    "generated_text": None, "details": None, "x_sent_ns": sent_ns})

    def error(self, reason: str) -> bytes:
        kind = {"rate_limited": "overloaded", "http_4xx": "validation"
                }.get(reason, "incomplete_generation")
        return sse({"error": "simulated error in the stream", "error_type": kind})

    def closing(self, model: str, usage: tuple[int, int], delays: list[float],
                terminate: bool = True, eos: bool = False) -> bytes:
        if not terminate:
            return b""
        # TGI's last event carries the end-of-sequence token (special) and the details.
        return sse({"index": usage[1] + 1, "token": {"id": 2, "text": "</s>", "logprob": 0.0,
                                                     "special": True},
                    "generated_text": "", "details": {"finish_reason": "length",
                                                      "generated_tokens": usage[1]}})

    def whole(self, model: str, text: str, reasoning: str, usage: tuple[int, int],
              delays: list[float]) -> dict[str, Any]:
        return {"generated_text": text, "details": {"finish_reason": "length",
                                                    "generated_tokens": usage[1]}}

    def headers(self, delays: list[float]) -> dict[str, str]:
        # TGI's router (server.rs) on /generate: whole milliseconds, cut as Rust's as_millis.
        # A stream's headers leave before the times are known: it sends none of these.
        busy = str(int(sum(delays) * 1000))
        return {"x-validation-time": "0", "x-queue-time": "0", "x-inference-time": busy,
                "x-total-time": busy}


FORMATS: dict[str, Format] = {
    "/v1/chat/completions": Format(),
    "/v1/completions": Completions(),
    "/v1/messages": Anthropic(),
    "/api/chat": Ollama(),
    "/generate_stream": TGI(streaming=True),
    "/generate": TGI(streaming=False),
}


def _max_tokens(body: dict[str, Any]) -> int:
    return int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)


def _now() -> int:
    return int(time.time())


def _phases(delays: list[float]) -> tuple[float, float]:
    """(prefill, decode) seconds: the wait before the first chunk, then the rest."""
    return (delays[0], sum(delays[1:])) if delays else (0.0, 0.0)


def _timings(usage: tuple[int, int], delays: list[float]) -> dict[str, Any]:
    """llama-server's ``timings`` (its server-task.cpp), from a server without a prompt cache."""
    prefill, decode = _phases(delays)
    out: dict[str, Any] = {"cache_n": 0}
    for kind, tokens, seconds in (("prompt", usage[0], prefill), ("predicted", usage[1], decode)):
        fair = 0 < tokens < 10**9 and seconds > 0  # huge_usage sends a 400-digit count
        out.update({f"{kind}_n": tokens, f"{kind}_ms": seconds * 1e3,
                    f"{kind}_per_token_ms": seconds * 1e3 / tokens if fair else 0.0,
                    f"{kind}_per_second": tokens / seconds if fair else 0.0})
    return out


def _usage(prompt_tokens: int, output_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": output_tokens,
            "total_tokens": prompt_tokens + output_tokens}


def sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def event(name: str, obj: dict[str, Any]) -> bytes:
    return f"event: {name}\n".encode() + sse(obj)


def line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"
