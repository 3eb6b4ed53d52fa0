"""A simulated LLM server with known timing, for the demo, tests and
benchmarks.

It speaks OpenAI chat and completions, Anthropic Messages, Ollama's native chat and TGI's
native generate (see simformats.py). Every streamed token event carries ``x_sent_ns``, the
server's CLOCK_MONOTONIC nanoseconds (a zero-padded string) taken just before the chunk is
written; every response
carries the ``x-sim-received-ns`` header, taken when the request was fully read. Processes
on one host share that clock, so a test can compare what a probe measured with what really
happened.

Run standalone: ``python -m llmmon.sim.simulator --port 8000 --ttft 0.2 --itl 0.03``.
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
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from llmmon.daemon.httpserver import HTTPServer, Request, Response
from llmmon.sim.formats import FORMATS, Format
from llmmon.sim.metrics import InFlight, server_metrics

_JSON = {"Content-Type": "application/json"}
_PIECE = re.compile(r"\s*\S+")


FAULTS = ("", "http_429", "http_401", "html", "truncate", "reset", "malformed", "hang",
          # 200 and a well-formed stream that serves no one: no tokens, or thinking only
          "empty", "thinking_only",
          # an error event inside the stream, in the format's own way (see error_reason)
          "stream_error",
          # bodies that break naive parsers: 100,000-deep JSON, a 400-digit token count
          "deep_json", "huge_usage",
          # a 404 naming the unknown model; a reasoning model refusing max_tokens/temperature
          "unknown_model", "reasoning_model")
DEEP = 100_000


@dataclass
class SimSettings:
    ttft: float = 0.05  # seconds from request to first content token
    itl: float = 0.02  # seconds between content chunks
    jitter: float = 0.0  # each delay is drawn uniformly within ± this many seconds
    output_tokens: int = 32  # length of filler answers (canned answers keep their length)
    reasoning_tokens: int = 0  # thinking tokens sent before the answer
    tokens_per_chunk: int = 1  # >1 coalesces tokens as speculative decoding and proxies do
    error_rate: float = 0.0  # share of requests answered with HTTP 500
    fault: str = ""  # one of FAULTS: every request misbehaves this way
    model: str = ""  # the model served (and listed); empty: whichever the request names
    echo_model: bool = False  # name the requested model in responses, as llama-cpp-python does
    error_reason: str = "http_5xx"  # stream_error: the reason its error event stands for
    eos_chunk: bool = False  # end with an empty end-of-sequence chunk counted in usage (vLLM)

    def update(self, changes: dict[str, Any]) -> None:
        names = {f.name for f in dataclasses.fields(self)}
        for key, value in changes.items():
            if key not in names:
                raise ValueError(f"unknown setting {key}")
            current = getattr(self, key)
            if isinstance(current, float) and isinstance(value, int):
                value = float(value)
            if type(value) is not type(current):
                raise ValueError(f"{key} must be {type(current).__name__}")
            if key == "fault" and value not in FAULTS:
                raise ValueError("fault must be one of " + ", ".join(FAULTS))
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


@dataclass
class _Plan:
    """What one request will get: reasoning tokens, answer tokens, usage."""

    fmt: Format
    model: str
    reasoning: list[str]
    tokens: list[str]
    prompt_tokens: int
    delays: list[float] = dataclasses.field(default_factory=list)  # slept before each chunk

    @property
    def usage(self) -> tuple[int, int]:
        return self.prompt_tokens, len(self.reasoning) + len(self.tokens)


class Simulator:
    def __init__(self, settings: SimSettings | None = None, seed: int | None = None) -> None:
        self.settings = settings or SimSettings()
        self._random = random.Random(seed)
        self._server = HTTPServer(self.handle, max_connections=1024)
        self.requests = 0
        self.last: Request | None = None  # the last API request, for tests of its shape
        self.model_lists = 0  # GET /v1/models served
        self.in_flight = InFlight()  # streams being written, for /metrics
        self.tokens_sent = 0  # content and reasoning tokens written, for /metrics

    async def start(self, host: str = "127.0.0.1", port: int = 0,
                    ssl_context: ssl.SSLContext | None = None) -> int:
        return await self._server.start(host, port, ssl_context)

    async def close(self) -> None:
        await self._server.close()

    async def handle(self, request: Request) -> Response:
        received = time.monotonic_ns()
        if request.path == "/v1/models":
            self.model_lists += 1
            model = self.settings.model  # an echoing simulator lists nothing
            return _json({"object": "list",
                          "data": [{"id": model, "object": "model"}] if model else []})
        if request.path == "/sim/config":
            return self._config(request)
        if request.path == "/metrics":
            text = server_metrics(self.settings.model or "llmmon-sim", self.in_flight.count,
                                  self.tokens_sent)
            return Response(200, text, {"Content-Type": "text/plain; version=0.0.4"})
        fmt = FORMATS.get(request.path)
        if fmt is None:
            return _json({"error": {"message": "not found"}}, 404)
        if request.method != "POST":
            return _json({"error": {"message": "method not allowed"}}, 405)
        self.requests += 1
        self.last = request
        try:
            body = json.loads(request.body)
            prompt, max_tokens, stream = fmt.request(body)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return _json({"error": {"message": "invalid request"}}, 400)
        if failure := await self._failure(request, body):
            return failure
        s = self.settings
        thinking = max(s.reasoning_tokens, 3 if s.fault == "thinking_only" else 0)
        reasoning = [f" thought{i}" for i in range(min(thinking, max_tokens))]
        tokens = answer(prompt, max_tokens - len(reasoning), s.output_tokens)
        if s.fault in ("empty", "thinking_only"):
            tokens = []
        requested = str(body.get("model") or "llmmon-sim")[:200]
        model = requested if s.echo_model or not s.model else s.model
        plan = _Plan(fmt, model, reasoning, tokens, max(1, len(prompt) // 4))
        headers = {"x-sim-received-ns": str(received),
                   "x-ratelimit-remaining-requests": "99", "x-ratelimit-remaining-tokens": "5000",
                   "x-ratelimit-limit-requests": "100", "x-ratelimit-limit-tokens": "10000"}
        if stream:
            headers.update({"Content-Type": fmt.content_type, "Cache-Control": "no-cache"})
            return Response(200, headers=headers, stream=self.in_flight.wrap(self._stream(plan)),
                            before_write=_stamp)
        plan.delays = [self._delay(s.ttft),
                       *(self._delay(s.itl) for _ in [*reasoning, *tokens][1:])]
        await asyncio.sleep(sum(plan.delays))
        self.tokens_sent += len(reasoning) + len(tokens)
        if s.fault == "deep_json":
            return Response(200, b"[" * DEEP + b"]" * DEEP, {**_JSON, **headers})
        whole = fmt.whole(model, "".join(tokens), "".join(reasoning), self._usage(plan),
                          plan.delays)
        return _json(whole, headers={**headers, **fmt.headers(plan.delays)})

    def _usage(self, plan: _Plan) -> tuple[int, int]:
        prompt, output = plan.usage
        if self.settings.fault == "huge_usage":
            return prompt, 10**400
        return prompt, output + self.settings.eos_chunk

    async def _failure(self, request: Request, body: dict[str, Any]) -> Response | None:
        """The configured fault's response, when it is one decided before streaming."""
        fault = self.settings.fault
        if self._random.random() < self.settings.error_rate:
            return _json({"error": {"message": "simulated failure"}}, 500)
        if fault == "http_429":
            return _json({"error": {"message": "rate limited"}}, 429, {"Retry-After": "7"})
        if fault == "http_401":  # echoing the key, as some servers do: llmmon must mask it
            key = request.headers.get("authorization", "").removeprefix("Bearer ") \
                or request.headers.get("x-api-key", "")
            return _json({"error": {"message": f"Incorrect API key provided: {key}"}}, 401)
        if fault == "unknown_model":
            return _json({"error": {"message": f"The model `{body.get('model')}` does not "
                                    "exist.", "type": "NotFoundError", "code": 404}}, 404)
        if fault == "reasoning_model" and "max_tokens" in body:
            return _json({"error": {"message": "Unsupported parameter: 'max_tokens' is not "
                                    "supported with this model. Use 'max_completion_tokens' "
                                    "instead.", "type": "invalid_request_error"}}, 400)
        if fault == "reasoning_model" and body.get("temperature", 1) != 1:
            return _json({"error": {"message": "Unsupported value: 'temperature' does not "
                                    "support 0 with this model.",
                                    "type": "invalid_request_error"}}, 400)
        if fault == "html":
            return Response(200, b"<html><body>502 Bad Gateway</body></html>",
                            {"Content-Type": "text/html"})
        if fault == "hang":
            await asyncio.sleep(3600)
        return None

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

    async def _stream(self, plan: _Plan) -> AsyncIterator[bytes]:
        s, fmt, model = self.settings, plan.fmt, plan.model
        yield fmt.opening(model)
        per_chunk = max(1, s.tokens_per_chunk)
        pieces = [(True, plan.reasoning[i : i + per_chunk])
                  for i in range(0, len(plan.reasoning), per_chunk)]
        pieces += [(False, plan.tokens[i : i + per_chunk])
                   for i in range(0, len(plan.tokens), per_chunk)]
        if s.fault == "deep_json":
            yield (b"" if fmt.content_type == "application/x-ndjson" else b"data: ") \
                + b"[" * DEEP + b"]" * DEEP + b"\n\n"
        for i, (reasoning, piece) in enumerate(pieces):
            plan.delays.append(self._delay(s.ttft if i == 0 else s.itl))
            await asyncio.sleep(plan.delays[-1])
            if s.fault == "reset" and i == len(pieces) // 2:
                raise ConnectionResetError("simulated reset")
            if s.fault == "stream_error" and i == len(pieces) // 2:
                yield fmt.error(s.error_reason)
                return
            yield fmt.token(model, "".join(piece), reasoning, _SENT_MARK)
            self.tokens_sent += len(piece)
            if s.fault == "malformed" and i == len(pieces) // 2:
                yield b"data: {not json\n\n" if fmt.content_type != "application/x-ndjson" \
                    else b"{not json\n"
        yield fmt.closing(model, self._usage(plan), plan.delays,
                          terminate=s.fault != "truncate", eos=s.eos_chunk)


# Token events are built with this mark in place of their send time, and the mark is
# replaced right before the bytes are written, so the stamp leaves out serialisation time.
_SENT_MARK = "x" * 19


def _stamp(piece: bytes) -> bytes:
    return piece.replace(_SENT_MARK.encode(), b"%019d" % time.monotonic_ns(), 1)


def _json(obj: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
          ) -> Response:
    return Response(status, json.dumps(obj).encode(), {**_JSON, **(headers or {})})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m llmmon.sim.simulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--tag", help="only to find this process by its command line")
    parser.add_argument("--port", type=int, default=8000)
    fields = dataclasses.fields(SimSettings)
    for f in fields:
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default),
                            default=f.default)
    args = parser.parse_args(argv)
    settings = SimSettings(**{f.name: getattr(args, f.name) for f in fields})

    async def serve() -> None:
        sim = Simulator(settings)
        port = await sim.start(args.host, args.port)
        print(f"simulator listening on http://{args.host}:{port}/v1", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
