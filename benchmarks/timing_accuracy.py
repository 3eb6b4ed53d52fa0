"""How true are llmmon's TTFT and ITL? Measured against the simulator's own send stamps.

The simulator runs in its own process and stamps every token event with CLOCK_MONOTONIC
just before writing it (``x_sent_ns``) and every response with the moment the request was
read (``x-sim-received-ns``); llmmon's probe stamps with the same clock. For each probe:

    TTFT error = measured TTFT - (first token sent - request received by the server)
    1st token  = first token's arrival stamp - its send stamp (TTFT's end point alone)
    ITL error  = measured gap  - (token i sent - token i-1 sent), for every gap

so the error is what the client adds: loopback transit both ways, the event loop's delay
in reading, and the stamping itself. Run at several numbers of concurrent streams, then
again while llmmon's own /metrics (10 endpoints' series by default) is scraped every 100 ms.

    python benchmarks/timing_accuracy.py [--streams 1 16 64 256] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmmon.config import Prompt
from llmmon.config.settings import Settings
from llmmon.daemon.runtime import Runtime
from llmmon.probe.run import run_probe
from llmmon.probe.transport import make_client
from llmmon.providers import get_provider
from llmmon.providers.openai import OpenAIConfig

SENT = re.compile(rb'"x_sent_ns":"?(\d+)')
PROMPT = Prompt(name="bench", text="Count from 1 to 32.", max_tokens=32)


class Recorder:
    """Wraps a provider's stream decoder to keep the raw bytes (for the server's stamps)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.raw = inner, bytearray()

    def feed(self, chunk: bytes) -> Any:
        self.raw += chunk
        return self.inner.feed(chunk)

    def finish(self) -> None:
        self.inner.finish()


async def one_stream(endpoint: OpenAIConfig, until: float, errors: dict[str, list[float]],
                     counts: dict[str, int]) -> None:
    provider = get_provider(endpoint)
    received: list[int] = []

    async def keep_header(response: httpx.Response) -> None:
        received.append(int(response.headers.get("x-sim-received-ns", "0")))

    async with make_client(endpoint) as client:
        client.event_hooks["response"] = [keep_header]
        while time.monotonic() < until:
            recorder = Recorder(provider.stream_decoder(endpoint))
            result = await run_probe(client, endpoint, PROMPT, decoder=recorder)
            if not result.ok or result.ttft is None:
                counts["failed"] += 1
                continue
            sent = [int(s) for s in SENT.findall(bytes(recorder.raw))]
            true_gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(sent)]
            assert result.sent_ns is not None
            # TTFT against the server's request-received stamp, which the simulator takes
            # after reading and parsing the request: under load that lateness is counted too.
            errors["ttft"].append(result.ttft - (sent[0] - received[-1]) / 1e9)
            # The first token's arrival stamp against its send stamp: the end of TTFT alone
            # (its start is llmmon's own stamp taken right before the request's last send).
            errors["first"].append(result.ttft - (sent[0] - result.sent_ns) / 1e9)
            errors["itl"] += [m - t for m, t in zip(result.itl, true_gaps, strict=True)]
            counts["probes"] += 1
            counts["events"] += len(sent)


def summary(values: list[float]) -> str:
    if not values:
        return "no data"
    ordered = sorted(v * 1000 for v in values)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return (f"mean {statistics.fmean(ordered):7.3f}  p50 {p(0.5):7.3f}  p99 {p(0.99):7.3f}  "
            f"max {ordered[-1]:7.3f} ms")


async def run(streams: int, seconds: float, base: str) -> dict[str, Any]:
    endpoint = OpenAIConfig(name="bench", provider="openai", url=base, model="sim",
                              timeout=30.0)
    errors: dict[str, list[float]] = {"ttft": [], "first": [], "itl": []}
    counts = {"probes": 0, "events": 0, "failed": 0}
    cpu0, until = time.process_time(), time.monotonic() + seconds
    await asyncio.gather(*(one_stream(endpoint, until, errors, counts) for _ in range(streams)))
    cpu = time.process_time() - cpu0
    return {"errors": errors, "counts": counts,
            "cpu_us_per_event": cpu / max(1, counts["events"]) * 1e6}


async def with_scrapes(streams: int, seconds: float, base: str, series_endpoints: int
                       ) -> dict[str, Any]:
    """The same, while this process's llmmon exporter is scraped every 100 ms by another."""
    settings = Settings(samplers={"host": {"enabled": False}, "gpu": {"enabled": False}})
    runtime = Runtime(settings, None)
    for i in range(series_endpoints):  # a realistic exposition to render
        runtime.metrics.add_endpoint((f"ep{i}", "openai", "model"), "host", ["check"])
    port = await runtime.exporter.start("127.0.0.1", 0, None)
    scraper = subprocess.Popen([sys.executable, "-c", SCRAPER, str(port), str(seconds + 2)])
    try:
        return await run(streams, seconds, base)
    finally:
        scraper.wait(seconds + 30)
        await runtime.exporter.close()


SCRAPER = """
import sys, time, httpx
port, seconds = int(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + seconds
with httpx.Client() as c:
    while time.monotonic() < end:
        try:
            c.get(f"http://127.0.0.1:{port}/metrics")
        except httpx.HTTPError:
            break  # the exporter has closed: the measurement is over
        time.sleep(0.1)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--itl", type=float, default=0.02)
    parser.add_argument("--ttft", type=float, default=0.05)
    parser.add_argument("--series-endpoints", type=int, default=10,
                        help="endpoints' worth of series in the scraped exposition")
    parser.add_argument("--json", action="store_true", help="also print raw summaries as JSON")
    args = parser.parse_args()
    sim = subprocess.Popen([sys.executable, "-m", "llmmon.sim.simulator", "--port", "0",
                            "--ttft", str(args.ttft), "--itl", str(args.itl)],
                           stdout=subprocess.PIPE, text=True)
    assert sim.stdout is not None
    base = sim.stdout.readline().split()[-1]
    print(f"simulator {base}: ttft {args.ttft * 1000:.0f} ms, itl {args.itl * 1000:.0f} ms, "
          f"32 tokens per probe, {args.seconds:.0f} s per row")
    rows = []
    try:
        for scraped in (False, True):
            for streams in args.streams:
                coro = (with_scrapes(streams, args.seconds, base, args.series_endpoints)
                        if scraped
                        else run(streams, args.seconds, base))
                out = asyncio.run(coro)
                label = f"{streams:>3} streams{' + scrapes' if scraped else ''}"
                c = out["counts"]
                print(f"{label}: {c['probes']} probes, {c['events']} events, {c['failed']} "
                      f"failed, CPU {out['cpu_us_per_event']:.0f} us/event")
                print(f"    TTFT error  {summary(out['errors']['ttft'])}")
                print(f"    1st token   {summary(out['errors']['first'])}")
                print(f"    ITL error   {summary(out['errors']['itl'])}", flush=True)
                rows.append({"streams": streams, "scraped": scraped, **c,
                             "cpu_us_per_event": out["cpu_us_per_event"]})
    finally:
        sim.terminate()
        sim.wait(5)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
