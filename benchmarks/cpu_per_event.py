"""CPU that llmmon's probe spends per streamed event, each event in its own read as real
servers send them: S concurrent SSE streams of N text events (OpenAI chat completions, or the
Anthropic Messages API), paced by a server in another process; this process's CPU time over
the text events received. The probe's whole work is counted (request, head, stamps, parsing,
folding, verdict); its clients are made beforehand, as the daemon keeps them. Beside it, on
the same responses and in the same process:

* a raw asyncio reader that parses nothing (the floor: the event loop's own cost);
* a minimal aiohttp client: lines, ``data:`` payloads through json.loads, text counted;
* the OpenAI SDK (``AsyncOpenAI``, streamed) for OpenAI, the Anthropic SDK for Anthropic.

Each is run ``--rounds`` times after a warm-up round; the median is printed.

    .venv/bin/python benchmarks/cpu_per_event.py [--api openai anthropic] [--streams 16 64]
        [--events 200] [--rounds 3]

The references come with `pip install -e '.[bench]'`; one that is missing is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_start import wait_up
from soak import free_port

from llmmon.config import Prompt
from llmmon.config.settings import Settings
from llmmon.probe.run import run_probe
from llmmon.probe.transport import make_client

TARGET_US = 50.0
OPENAI_CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                "model": "m",
                "choices": [{"index": 0, "delta": {"content": " token"}, "finish_reason": None}]}
ANTHROPIC_DELTA = {"type": "content_block_delta", "index": 0,
                   "delta": {"type": "text_delta", "text": " token"}}


def sse(event: str | None, obj: object) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj)
    return (f"event: {event}\n" if event else "").encode() + f"data: {data}\n\n".encode()


def stream_parts(api: str, events: int) -> tuple[bytes, bytes, bytes]:
    """What a stream sends before its text events, each text event, and its end."""
    if api == "openai":
        return b"", sse(None, OPENAI_CHUNK), sse(None, "[DONE]")
    start = sse("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
        "stop_reason": None, "usage": {"input_tokens": 5, "output_tokens": 1}}})
    start += sse("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "text", "text": ""}})
    end = sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    end += sse("message_delta", {"type": "message_delta",
                                 "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                 "usage": {"output_tokens": events}})
    end += sse("message_stop", {"type": "message_stop"})
    return start, sse("content_block_delta", ANTHROPIC_DELTA), end


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


async def serve(port: int, api: str, events: int, gap: float) -> None:
    """Answers every POST with a stream: one chunked write per event, `gap` apart; GET
    .../models for the wait."""
    start, event, end = stream_parts(api, events)
    piece, start, end = chunk(event), chunk(start), chunk(end) + b"0\r\n\r\n"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), 0)
                await reader.readexactly(length)
                if head.startswith(b"GET"):
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 11\r\n\r\n{\"data\":[]}")
                    continue
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n" + start)
                for _ in range(events):
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(gap)
                writer.write(end)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


Runner = Callable[[], Awaitable[int]]


def llmmon_runner(api: str, url: str, streams: int) -> Runner:
    config: dict[str, Any] = {"name": "s", "provider": api, "url": url, "model": "m",
                              "timeout": "120s", "max_tokens": 1000}
    if api == "openai":
        config.update(url=url + "/v1", stream_options=False)
    endpoint = Settings(endpoints=[config]).endpoints[0]
    prompt = Prompt(name="p", text="go")
    clients = [make_client(endpoint, 1) for _ in range(streams)]  # the daemon keeps its own

    async def run() -> int:
        results = await asyncio.gather(*(run_probe(c, endpoint, prompt) for c in clients))
        bad = [r.detail for r in results if not r.ok]
        if bad:
            raise SystemExit(f"probes failed: {bad[:3]}")
        return sum(r.content_chunks for r in results)

    return run


def raw_runner(api: str, port: int, streams: int, events: int) -> Runner:
    path = b"/v1/chat/completions" if api == "openai" else b"/v1/messages"

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" % path)
        while not (await reader.read(65536)).endswith(b"0\r\n\r\n"):
            pass
        writer.close()

    async def run() -> int:
        await asyncio.gather(*(one() for _ in range(streams)))
        return streams * events

    return run


def aiohttp_runner(api: str, url: str, streams: int) -> Runner | None:
    try:
        import aiohttp
    except ImportError:
        return None
    target = url + ("/v1/chat/completions" if api == "openai" else "/v1/messages")
    body = {"model": "m", "max_tokens": 1000, "stream": True,
            "messages": [{"role": "user", "content": "go"}]}

    def text_of(obj: dict[str, Any]) -> str | None:
        if api == "openai":
            choices = obj.get("choices") or [{}]
            return str(choices[0].get("delta", {}).get("content") or "") or None
        return obj.get("delta", {}).get("text") if obj.get("type") == "content_block_delta" \
            else None

    async def one(session: aiohttp.ClientSession) -> int:
        count = 0
        async with session.post(target, json=body) as response:
            async for line in response.content:
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    break
                count += text_of(json.loads(payload)) is not None
        return count

    async def run() -> int:
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=streams)) as session:
            return sum(await asyncio.gather(*(one(session) for _ in range(streams))))

    return run


def sdk_runner(api: str, url: str, streams: int) -> tuple[str, Runner] | None:
    try:
        if api == "openai":
            import openai
            openai_client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x",
                                               max_retries=0)
        else:
            import anthropic
            anthropic_client = anthropic.AsyncAnthropic(base_url=url, api_key="x",
                                                        max_retries=0)
    except ImportError:
        return None

    async def one() -> int:
        count = 0
        if api == "openai":
            stream = await openai_client.chat.completions.create(
                model="m", max_tokens=1000, stream=True,
                messages=[{"role": "user", "content": "go"}])
            async for part in stream:
                count += bool(part.choices and part.choices[0].delta.content)
        else:
            events = await anthropic_client.messages.create(
                model="m", max_tokens=1000, stream=True,
                messages=[{"role": "user", "content": "go"}])
            async for event in events:
                count += event.type == "content_block_delta"
        return count

    async def run() -> int:
        return sum(await asyncio.gather(*(one() for _ in range(streams))))

    return ("OpenAI SDK" if api == "openai" else "Anthropic SDK"), run


async def measure(run: Runner, rounds: int) -> tuple[float, int]:
    """Median µs of CPU per event over ``rounds`` runs, after a warm-up run."""
    await run()
    per_event, events = [], 0
    for _ in range(rounds):
        cpu = time.process_time()
        events = await run()
        per_event.append((time.process_time() - cpu) / events * 1e6)
    return statistics.median(per_event), events


async def main(apis: list[str], streams: list[int], events: int, gap: float,
               rounds: int) -> None:
    for api in apis:
        port = free_port()
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--api", api,
                                   "--events", str(events), "--gap", str(gap)])
        url = f"http://127.0.0.1:{port}"
        try:
            wait_up(url + "/v1")
            for n in streams:
                print(f"{api}: {n} streams × {events} events, one event per read "
                      f"({gap * 1e3:g} ms apart), median of {rounds} rounds:", flush=True)
                runners: list[tuple[str, Runner | None]] = [
                    ("llmmon run_probe", llmmon_runner(api, url, n)),
                    ("raw asyncio reader (floor)", raw_runner(api, port, n, events)),
                    ("minimal aiohttp client", aiohttp_runner(api, url, n)),
                    sdk_runner(api, url, n) or ("SDK", None)]
                for name, run in runners:
                    if run is None:
                        print(f"  {name:28} not installed (pip install -e '.[bench]')")
                        continue
                    us, got = await measure(run, rounds)
                    verdict = ""
                    if name.startswith("llmmon"):
                        verdict = f"  target ≤ {TARGET_US:g} µs: " + \
                            ("met" if us <= TARGET_US else "NOT met")
                    print(f"  {name:28} {got:6d} events, {us:6.1f} µs CPU per event "
                          f"({1e6 / us:,.0f} events per CPU second){verdict}", flush=True)
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", nargs="+", choices=["openai", "anthropic"],
                        default=["openai", "anthropic"])
    parser.add_argument("--streams", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.005)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", type=int)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.api[0], args.events, args.gap))
    else:
        asyncio.run(main(args.api, args.streams, args.events, args.gap, args.rounds))
