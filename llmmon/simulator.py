"""A simulated OpenAI-compatible LLM server with known timing, for the demo, tests and
benchmarks.

Every streamed chunk carries ``x_sent_ns``, the server's CLOCK_MONOTONIC nanoseconds taken
just before the chunk is written, and every response carries the ``x-sim-received-ns``
header, taken when the request was fully read. Processes on one host share that clock, so a
test can compare what a probe measured with what really happened.

Run standalone: ``python -m llmmon.simulator --port 8000 --ttft 0.2 --itl 0.03``.
Change behaviour while running: ``POST /sim/config`` with a JSON object of settings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import random
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from llmmon.httpserver import HTTPServer, Request, Response

_JSON = {"Content-Type": "application/json"}
_PIECE = re.compile(r"\s*\S+")


@dataclass
class SimSettings:
    ttft: float = 0.05  # seconds from request to first content token
    itl: float = 0.02  # seconds between content chunks
    jitter: float = 0.0  # each delay is drawn uniformly within ± this many seconds
    output_tokens: int = 32  # length of filler answers (canned answers keep their length)
    tokens_per_chunk: int = 1  # >1 coalesces tokens as speculative decoding and proxies do
    error_rate: float = 0.0  # share of requests answered with HTTP 500
    model: str = "llmmon-sim"

    def update(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            current = getattr(self, key, None)
            if key not in {f.name for f in dataclasses.fields(self)}:
                raise ValueError(f"unknown setting {key}")
            if isinstance(current, float) and isinstance(value, int):
                value = float(value)
            if type(value) is not type(current):
                raise ValueError(f"{key} must be {type(current).__name__}")
            setattr(self, key, value)


def answer(prompt: str, max_tokens: int, filler_tokens: int) -> list[str]:
    """The simulated model's answer, as tokens (whitespace-led words)."""
    if "capital of france" in prompt.lower():
        text = "The capital of France is Paris."
    elif sum_match := re.search(r"(\d+)\s*\+\s*(\d+)", prompt):
        a, b = int(sum_match.group(1)), int(sum_match.group(2))
        text = f"{a} + {b} = {a + b}"
    elif count := re.search(r"count from 1 to (\d+)", prompt.lower()):
        text = ", ".join(str(i) for i in range(1, min(int(count.group(1)), 1000) + 1))
    else:
        text = " ".join(f"token{i}" for i in range(filler_tokens))
    return _PIECE.findall(text)[:max_tokens]


class Simulator:
    def __init__(self, settings: SimSettings | None = None, seed: int | None = None) -> None:
        self.settings = settings or SimSettings()
        self._random = random.Random(seed)
        self._server = HTTPServer(self.handle, max_connections=1024)
        self.requests = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        return await self._server.start(host, port)

    async def close(self) -> None:
        await self._server.close()

    async def handle(self, request: Request) -> Response:
        received = time.monotonic_ns()
        if request.path == "/v1/models":
            return _json({"object": "list", "data": [{"id": self.settings.model,
                                                      "object": "model"}]})
        if request.path == "/sim/config":
            return self._config(request)
        if request.path not in ("/v1/chat/completions", "/v1/completions"):
            return _json({"error": {"message": "not found"}}, 404)
        if request.method != "POST":
            return _json({"error": {"message": "method not allowed"}}, 405)
        self.requests += 1
        try:
            body = json.loads(request.body)
            chat = request.path.endswith("/chat/completions")
            prompt = body["messages"][-1]["content"] if chat else body["prompt"]
            max_tokens = int(body.get("max_tokens") or 16)
        except (ValueError, KeyError, IndexError, TypeError):
            return _json({"error": {"message": "invalid request"}}, 400)
        if self._random.random() < self.settings.error_rate:
            return _json({"error": {"message": "simulated failure"}}, 500)
        tokens = answer(str(prompt), max_tokens, self.settings.output_tokens)
        headers = {"x-sim-received-ns": str(received)}
        if body.get("stream"):
            headers["Content-Type"] = "text/event-stream"
            headers["Cache-Control"] = "no-cache"
            return Response(200, headers=headers, stream=self._stream(tokens, chat, len(prompt)))
        await asyncio.sleep(self._delay(self.settings.ttft)
                            + sum(self._delay(self.settings.itl) for _ in tokens[1:]))
        return _json(_completion(tokens, chat, len(prompt), self.settings.model), headers=headers)

    def _config(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = json.loads(request.body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("expected a JSON object")
                self.settings.update(changes)
            except ValueError as exc:
                return _json({"error": {"message": str(exc)}}, 400)
        return _json(dataclasses.asdict(self.settings))

    def _delay(self, seconds: float) -> float:
        jitter = self.settings.jitter
        return max(0.0, seconds + (self._random.uniform(-jitter, jitter) if jitter else 0.0))

    async def _stream(self, tokens: list[str], chat: bool, prompt_chars: int
                      ) -> AsyncIterator[bytes]:
        created, model = int(time.time()), self.settings.model
        per_chunk = max(1, self.settings.tokens_per_chunk)
        if chat:  # real servers open with a role-only chunk, which is not a token
            yield _sse(_chunk(created, model, {"delta": {"role": "assistant", "content": ""}}))
        chunks = [tokens[i : i + per_chunk] for i in range(0, len(tokens), per_chunk)]
        for i, piece in enumerate(chunks):
            await asyncio.sleep(self._delay(self.settings.ttft if i == 0 else self.settings.itl))
            text = "".join(piece)
            choice = {"delta": {"content": text}} if chat else {"text": text}
            yield _sse(_chunk(created, model, choice, x_sent_ns=time.monotonic_ns()))
        end = {"delta": {}, "finish_reason": "length"} if chat else {"text": "",
                                                                      "finish_reason": "length"}
        yield _sse(_chunk(created, model, end))
        usage = _usage(prompt_chars, len(tokens))
        yield _sse({"id": "sim", "object": "chat.completion.chunk", "created": created,
                    "model": model, "choices": [], "usage": usage}) + b"data: [DONE]\n\n"


def _chunk(created: int, model: str, choice: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "sim", "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, **choice}], **extra}


def _usage(prompt_chars: int, output_tokens: int) -> dict[str, int]:
    prompt_tokens = max(1, prompt_chars // 4)  # the usual rough chars-per-token of English
    return {"prompt_tokens": prompt_tokens, "completion_tokens": output_tokens,
            "total_tokens": prompt_tokens + output_tokens}


def _completion(tokens: list[str], chat: bool, prompt_chars: int, model: str) -> dict[str, Any]:
    text = "".join(tokens)
    choice: dict[str, Any] = ({"message": {"role": "assistant", "content": text}} if chat
                              else {"text": text})
    return {"id": "sim", "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "length", **choice}],
            "usage": _usage(prompt_chars, len(tokens))}


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _json(obj: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
          ) -> Response:
    return Response(status, json.dumps(obj).encode(), {**_JSON, **(headers or {})})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m llmmon.simulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    for f in dataclasses.fields(SimSettings):
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(flag, type=type(f.default), default=f.default)
    args = parser.parse_args(argv)
    names = [f.name for f in dataclasses.fields(SimSettings)]
    settings = SimSettings(**{name: getattr(args, name) for name in names})

    async def serve() -> None:
        sim = Simulator(settings)
        port = await sim.start(args.host, args.port)
        print(f"simulator listening on http://{args.host}:{port}/v1", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
