"""The load probe's own queueing: how long each request waits in the client between its
worker asking and its last byte going out, and the concurrency actually reached. llmmon's
load probe (a connection of its own per stream, opened before the clock, each request
encoded before it is asked for and sent by one ``send``: ``probe/wire.py``) against two
references in the same process, against a simulator in another: one httpx pool shared by
every stream (what it did in session 5), and an httpx client of one connection per stream
(session 6); then spread over ``--processes`` worker processes (``load.processes``), each
run twice (the first spawns the workers) and the second printed.

    .venv/bin/python benchmarks/load_start.py [--streams 64 256] [--processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak import free_port, simulator

from llmmon.config import LoadConfig
from llmmon.config.settings import Settings
from llmmon.probe import spread
from llmmon.probe.load import load_clients, run_load
from llmmon.probe.spread import run_load_spread
from llmmon.probe.transport import make_client


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def one(url: str, streams: int, shared: bool, processes: int = 1,
              httpx_each: bool = False) -> str:
    endpoint = Settings(endpoints=[{"name": "sim", "provider": "openai", "url": url,
                                    "model": "sim", "timeout": "60s",
                                    "max_tokens": 16}]).endpoints[0]
    load = LoadConfig(concurrency=streams, requests=3 * streams if streams <= 64 else 2 * streams,
                      timeout=120.0, processes=processes)
    if processes > 1:
        await run_load_spread(endpoint, load)  # spawns the workers
        result = await run_load_spread(endpoint, load)
        how = f"llmmon, {processes} processes".ljust(26)
    elif shared:
        pool = make_client(endpoint, streams)
        clients = [pool] * streams
    elif httpx_each:
        clients = [make_client(endpoint, 1) for _ in range(streams)]
    else:
        clients = load_clients(endpoint, load)
    if processes <= 1:
        how = ("httpx, one shared pool    " if shared else
               "httpx, a client per stream" if httpx_each else "llmmon's load probe       ")
        try:
            result = await run_load(clients, endpoint, load)
        finally:
            await asyncio.gather(*(c.aclose() for c in set(clients)), return_exceptions=True)
    waits = result.send_waits
    return (f"{streams:4d} streams, {how}: "
            f"{result.succeeded}/{result.requests} ok, reached concurrency "
            f"{result.concurrency}, asked→sent p50 {_p(waits, 0.5) * 1e3:7.2f} ms, p99 "
            f"{_p(waits, 0.99) * 1e3:7.2f} ms, max {max(waits) * 1e3:7.2f} ms, "
            f"{result.output_tokens_per_second:7.0f} tokens/s")


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url + "/models", timeout=1)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise SystemExit("the simulator did not start") from None
            time.sleep(0.1)


async def main(streams: list[int], processes: list[int]) -> None:
    port = free_port()
    sim = simulator(port)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_up(url)
        for n in streams:
            for shared, each in ((True, False), (False, True), (False, False)):
                print(await one(url, n, shared, httpx_each=each), flush=True)
            for count in processes:
                print(await one(url, n, False, count), flush=True)
    finally:
        spread.shutdown()
        sim.terminate()
        sim.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--processes", type=int, nargs="*", default=[2])
    args = parser.parse_args()
    asyncio.run(main(args.streams, args.processes))
