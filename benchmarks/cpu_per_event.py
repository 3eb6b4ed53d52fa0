"""CPU that llmmon's probe spends per streamed event, each event in its own read as real
servers send them: S concurrent OpenAI-style SSE streams of N events, paced by the server
(another process), read by `run_probe`; this process's CPU time over the events received.
Beside it in the same process, the floor: a raw asyncio reader that reads the same
responses and parses nothing.

    .venv/bin/python benchmarks/cpu_per_event.py [--streams 16 64] [--events 200]

(The issue's other references, a minimal aiohttp client and the OpenAI SDK, are not
installed here.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_start import wait_up
from soak import free_port

from llmmon.config import Prompt
from llmmon.config.settings import Settings
from llmmon.probe.run import run_probe
from llmmon.probe.transport import make_client

CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"content": " token"}, "finish_reason": None}]}


async def serve(port: int, events: int, gap: float) -> None:
    """Answers every POST with `events` SSE events, one chunked write each, `gap` apart;
    GET /v1/models for the wait."""
    event = b"data: " + json.dumps(CHUNK).encode() + b"\n\n"
    piece = b"%x\r\n%s\r\n" % (len(event), event)
    done = b"data: [DONE]\n\n"
    end = b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done)

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
                             b"Transfer-Encoding: chunked\r\n\r\n")
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


async def llmmon_streams(url: str, streams: int) -> int:
    endpoint = Settings(endpoints=[{"name": "s", "provider": "openai", "url": url,
                                    "model": "m", "timeout": "120s", "max_tokens": 1000,
                                    "stream_options": False}]).endpoints[0]
    prompt = Prompt(name="p", text="go")
    clients = [make_client(endpoint, 1) for _ in range(streams)]
    try:
        results = await asyncio.gather(*(run_probe(c, endpoint, prompt) for c in clients))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    bad = [r.detail for r in results if not r.ok]
    if bad:
        raise SystemExit(f"probes failed: {bad[:3]}")
    return sum(r.content_chunks for r in results)


async def raw_streams(port: int, streams: int, events: int) -> int:
    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                     b"\r\n{}")
        while not (await reader.read(65536)).endswith(b"0\r\n\r\n"):
            pass
        writer.close()

    await asyncio.gather(*(one() for _ in range(streams)))
    return streams * events


async def measure(what: str, run: object) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    events = await run  # type: ignore[misc]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"  {what:28} {events:6d} events, {cpu / events * 1e6:7.1f} µs CPU per event "
          f"({events / cpu:,.0f} events per CPU second), wall {wall:.1f} s", flush=True)


async def main(streams: list[int], events: int, gap: float) -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port),
                               "--events", str(events), "--gap", str(gap)])
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_up(url)
        for n in streams:
            print(f"{n} streams × {events} events, one event per read ({gap * 1e3:g} ms apart):")
            await measure("llmmon run_probe", llmmon_streams(url, n))
            await measure("raw asyncio reader (floor)", raw_streams(port, n, events))
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.005)
    parser.add_argument("--serve", type=int)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.events, args.gap))
    else:
        asyncio.run(main(args.streams, args.events, args.gap))
