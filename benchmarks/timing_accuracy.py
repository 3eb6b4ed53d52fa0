"""How true are llmmon's TTFT and ITL? Measured against the simulator's own send stamps.

The simulator runs in its own process and stamps every token event with CLOCK_MONOTONIC
just before writing it (``x_sent_ns``) and every response with the moment the request was
read (``x-sim-received-ns``); llmmon's probe stamps with the same clock. For each probe:

    TTFT error = measured TTFT - (first token sent - request received by the server)
    1st token  = first token's arrival stamp - its send stamp (TTFT's end point alone)
    ITL error  = measured gap  - (token i sent - token i-1 sent), for every gap
    E2E error  = measured E2E  - (last token sent - request received by the server)

so the error is what the client adds: loopback transit both ways, the event loop's delay
in reading, and the stamping itself. Targets (issue 17): 1st token p99 and ITL p99 ≤ 0.1 ms,
E2E median ≤ 1 ms. Each row also says whether the client was saturated (its event loop
late at p99 by more than a quarter of the server's inter-token gap, measured by a 10 ms
ticker in every worker: later, a read takes two tokens and stamps both with the second's
arrival) and the concurrency reached (the most probes in flight at one instant).
``--reference`` follows each row with the floor client's: raw sockets and kernel stamps,
nothing parsed, on the same server; what both show is the server's and the machine's.

``--busy`` runs a CPU-bound neighbour process throughout; ``--workers N`` spreads the
streams over N processes, each with its own event loop, all stamping with CLOCK_MONOTONIC
(one clock for the whole machine), their observations merged as they are; ``--nice N``
runs them at nice N (llmmon's ``load.nice``), the simulator and the neighbour at 0. ``--scrapes``
repeats every row while llmmon's own /metrics (100 endpoints' series) is scraped 20 times a
second by another process.

    python benchmarks/timing_accuracy.py [--streams 1 16 64 256] [--seconds 10] [--busy]
        [--workers 1] [--nice 0] [--scrapes]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import re
import socket
import statistics
import struct
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
from llmmon.probe.transport import ProbeClient, make_client
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
    first_byte: list[int] = []

    async with make_client(endpoint) as client:
        # The server's stamp is read off the response at the transport, so that the probe
        # goes the way the daemon's go (an event hook would send it through httpx's).
        assert isinstance(client, ProbeClient)
        handle = client.stamping.handle_async_request

        async def keep_header(request: httpx.Request) -> httpx.Response:
            response = await handle(request)
            received.append(int(response.headers.get("x-sim-received-ns", "0")))
            first_byte.append(int(response.headers.get("x-sim-first-byte-ns", "0")))
            return response

        client.stamping.handle_async_request = keep_header  # type: ignore[method-assign]
        while time.monotonic() < until:
            recorder = Recorder(provider.stream_decoder(endpoint))
            counts["in_flight"] += 1
            counts["most"] = max(counts["most"], counts["in_flight"])
            try:
                result = await run_probe(client, endpoint, PROMPT, decoder=recorder)
            finally:
                counts["in_flight"] -= 1
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
            # E2E from the request's first byte: the stamping server's kernel stamp of it
            # where there is one, else the simulator's received stamp. A probe that opened
            # its connection counts it in its E2E (what a user waits for), which no server
            # stamp sees: its setup phases, measured apart, are taken out to compare.
            setup = sum(result.phases.get(k, 0.0) for k in ("dns", "connect", "tls"))
            errors["e2e"].append(result.e2e - setup
                                 - (sent[-1] - (first_byte[-1] or received[-1])) / 1e9)
            counts["probes"] += 1
            counts["events"] += len(sent)


async def reference_stream(base: str, until: float, errors: dict[str, list[float]],
                           counts: dict[str, int]) -> None:
    """The floor: the least a client can do on the same server. A raw socket per request,
    kernel receive stamps (SO_TIMESTAMPNS) per read, no HTTP or SSE parsing beyond finding
    the server's stamps; every event in a read gets that read's stamp, as in llmmon."""
    host, port = base.split("//")[1].split("/")[0].split(":")
    body = json.dumps({"model": "sim", "max_tokens": 32, "stream": True,
                       "messages": [{"role": "user", "content": PROMPT.text}]}).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
               b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    loop = asyncio.get_running_loop()
    while time.monotonic() < until:
        counts["in_flight"] += 1
        counts["most"] = max(counts["most"], counts["in_flight"])
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, int(port)))
        began = time.monotonic_ns()
        sock.send(request)
        stamps, raw = [], b""
        while b"[DONE]" not in raw or not raw.endswith(b"\r\n0\r\n\r\n"):
            await wait_readable(loop, sock)
            data, anc, _, _ = sock.recvmsg(65536, 64)
            at = stamp_of(anc)
            stamps += [at] * len(SENT.findall(data))
            raw += data
        sock.close()
        counts["in_flight"] -= 1
        sent = [int(x) for x in SENT.findall(raw)]
        received = int(re.search(rb"x-sim-received-ns: (\d+)", raw, re.I).group(1))  # type: ignore[union-attr]
        first = re.search(rb"x-sim-first-byte-ns: (\d+)", raw, re.I)
        errors["first"].append((stamps[0] - sent[0]) / 1e9)
        errors["itl"] += [((b - a) - (y - x)) / 1e9 for (a, b), (x, y)
                          in zip(itertools.pairwise(stamps), itertools.pairwise(sent), strict=True)]
        errors["e2e"].append((stamps[-1] - began
                               - (sent[-1] - (int(first.group(1)) if first else received))) / 1e9)
        errors["ttft"].append((stamps[0] - began - (sent[0] - received)) / 1e9)
        counts["probes"] += 1
        counts["events"] += len(sent)


async def wait_readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready = loop.create_future()
    loop.add_reader(sock.fileno(), lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())


def stamp_of(anc: list[tuple[int, int, bytes]]) -> int:
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == 35:
            seconds, nanos = struct.unpack("@qq", data[:16])
            return seconds * 10**9 + nanos - (time.time_ns() - time.monotonic_ns())
    return time.monotonic_ns()


async def ticker(until: float, lags: list[float]) -> None:
    """How late the event loop runs a 10 ms timer: the client's own saturation. (Not
    faster: its own wake-ups would take turns from the reads it watches.)"""
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        due = loop.time() + 0.01
        await asyncio.sleep(0.01)
        lags.append(loop.time() - due)


def summary(values: list[float]) -> str:
    if not values:
        return "no data"
    ordered = sorted(v * 1000 for v in values)
    return (f"mean {statistics.fmean(ordered):7.3f}  p50 {pct(ordered, 0.5):7.3f}  "
            f"p99 {pct(ordered, 0.99):7.3f}  max {ordered[-1]:7.3f} ms")


def pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run(streams: int, until: float, base: str, reference: bool = False
              ) -> dict[str, Any]:
    """``streams`` probe loops in this process until ``until`` (CLOCK_MONOTONIC seconds);
    ``reference``: the floor client's loops instead."""
    endpoint = OpenAIConfig(name="bench", provider="openai", url=base, model="sim",
                            timeout=30.0)
    errors: dict[str, list[float]] = {"ttft": [], "first": [], "itl": [], "e2e": [], "lag": []}
    counts = {"probes": 0, "events": 0, "failed": 0, "in_flight": 0, "most": 0}
    cpu0 = time.process_time()
    loops = (reference_stream(base, until, errors, counts) if reference
             else one_stream(endpoint, until, errors, counts) for _ in range(streams))
    await asyncio.gather(ticker(until, errors["lag"]), *loops)
    return {"errors": errors, "counts": counts, "cpu": time.process_time() - cpu0}


def worker(streams: int, until: float, base: str, reference: bool, out: Any,
           nice: int = 0) -> None:
    os.setpriority(os.PRIO_PROCESS, 0, nice)  # as llmmon's load.nice does (probe/spread.py)
    out.put(asyncio.run(run(streams, until, base, reference)))


def run_spread(streams: int, seconds: float, base: str, workers: int,
               reference: bool = False, nice: int = 0) -> dict[str, Any]:
    """The streams spread over ``workers`` processes (one: this one), merged exactly, each
    at ``nice`` (this process: for the row, then back)."""
    until = time.monotonic() + seconds
    if workers <= 1:
        own = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, 0, nice)
        try:
            return asyncio.run(run(streams, until, base, reference))
        finally:
            os.setpriority(os.PRIO_PROCESS, 0, own)
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    shares = [streams // workers + (i < streams % workers) for i in range(workers)]
    procs = [context.Process(target=worker, args=(n, until, base, reference, out, nice))
             for n in shares if n]
    for proc in procs:
        proc.start()
    parts = [out.get(timeout=seconds + 120) for _ in procs]
    for proc in procs:
        proc.join(30)
    merged: dict[str, Any] = {"errors": {k: [] for k in parts[0]["errors"]},
                              "counts": dict.fromkeys(parts[0]["counts"], 0), "cpu": 0.0}
    for part in parts:
        for key, values in part["errors"].items():
            merged["errors"][key] += values
        for key, value in part["counts"].items():
            merged["counts"][key] += value  # "most": a sum of maxima, an upper bound
        merged["cpu"] += part["cpu"]
    return merged


def with_scrapes(streams: int, seconds: float, base: str, series_endpoints: int,
                 workers: int) -> dict[str, Any]:
    """The same, while an llmmon exporter in this process is scraped 20 times a second."""
    settings = Settings(samplers={"host": {"enabled": False}, "gpu": {"enabled": False}})

    async def exporter() -> dict[str, Any]:
        runtime = Runtime(settings, None)
        for i in range(series_endpoints):  # a realistic exposition to render
            runtime.metrics.add_endpoint((f"ep{i}", "openai", "model"), "host", ["check"])
        port = await runtime.exporter.start("127.0.0.1", 0, None)
        scraper = subprocess.Popen([sys.executable, "-c", SCRAPER, str(port), str(seconds + 2)])
        try:
            if workers <= 1:
                return await run(streams, time.monotonic() + seconds, base)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, run_spread, streams, seconds, base, workers)
        finally:
            scraper.wait(seconds + 30)
            await runtime.exporter.close()

    return asyncio.run(exporter())


SCRAPER = """
import sys, time, httpx
port, seconds = int(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + seconds
with httpx.Client(headers={"Accept-Encoding": "gzip"}) as c:
    while time.monotonic() < end:
        try:
            c.get(f"http://127.0.0.1:{port}/metrics")
        except httpx.HTTPError:
            break  # the exporter has closed: the measurement is over
        time.sleep(0.05)
"""
TARGETS = {"first": ("p99", 0.1), "itl": ("p99", 0.1), "e2e": ("p50", 1.0)}


def verdict(errors: dict[str, list[float]]) -> str:
    parts = []
    for key, (which, limit) in TARGETS.items():
        ordered = sorted(v * 1000 for v in errors[key])
        value = pct(ordered, 0.99 if which == "p99" else 0.5)
        parts.append(f"{key} {which} {value:.3f} ≤ {limit:g} ms "
                     f"{'met' if value <= limit else 'NOT met'}")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--itl", type=float, default=0.02)
    parser.add_argument("--ttft", type=float, default=0.05)
    parser.add_argument("--busy", action="store_true", help="a CPU-bound neighbour process")
    parser.add_argument("--workers", type=int, default=1, help="client processes")
    parser.add_argument("--nice", type=int, default=0,
                        help="the client processes' nice value (llmmon's load.nice); the "
                        "simulator and the neighbour keep 0")
    parser.add_argument("--server", choices=("sim", "stamping"), default="sim",
                        help="stamping: benchmarks/stamping_server.py, which stamps a "
                        "request's arrival in the kernel (the E2E truth)")
    parser.add_argument("--sim-nice", type=int, default=0,
                        help="the simulator's: its request-received stamp is the E2E truth, "
                        "late by its own queueing when it waits for a CPU")
    parser.add_argument("--reference", action="store_true",
                        help="after each row, the floor client on the same server")
    parser.add_argument("--scrapes", action="store_true",
                        help="repeat every row under 20 scrapes/s of /metrics")
    parser.add_argument("--series-endpoints", type=int, default=100,
                        help="endpoints' worth of series in the scraped exposition")
    parser.add_argument("--json", action="store_true", help="also print raw summaries as JSON")
    args = parser.parse_args()
    server = ([sys.executable, "-m", "llmmon.sim.simulator", "--port", "0"]
              if args.server == "sim" else
              [sys.executable, str(Path(__file__).resolve().parent / "stamping_server.py")])
    sim = subprocess.Popen([*server, "--ttft", str(args.ttft), "--itl", str(args.itl)],
                           stdout=subprocess.PIPE, text=True,
                           preexec_fn=lambda: os.setpriority(os.PRIO_PROCESS, 0, args.sim_nice))
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    assert sim.stdout is not None
    base = sim.stdout.readline().split()[-1]
    print(f"{args.server} {base}: ttft {args.ttft * 1000:.0f} ms, itl {args.itl * 1000:.0f} ms, "
          f"32 tokens per probe, {args.seconds:.0f} s per row, {args.workers} client "
          f"process(es) at nice {args.nice}, server at {args.sim_nice}"
          f"{', a busy neighbour' if busy else ''}, "
          f"{os.cpu_count()} CPUs")
    rows = []
    try:
        for scraped in (False, True) if args.scrapes else (False,):
            for streams in args.streams:
                out = (with_scrapes(streams, args.seconds, base, args.series_endpoints,
                                    args.workers)
                       if scraped else run_spread(streams, args.seconds, base, args.workers,
                                                  nice=args.nice))
                rows.append(report(streams, scraped, out, args.itl * 250))
                if args.reference and not scraped:
                    floor = run_spread(streams, args.seconds, base, args.workers, True,
                                       args.nice)
                    rows.append(report(streams, scraped, floor, args.itl * 250, "floor client"))
    finally:
        sim.terminate()
        sim.wait(5)
        if busy:
            busy.kill()
            busy.wait(5)
    if args.json:
        print(json.dumps(rows))


def report(streams: int, scraped: bool, out: dict[str, Any], saturated_ms: float,
           who: str = "llmmon") -> dict[str, Any]:
    c, errors = out["counts"], out["errors"]
    lag_p99 = pct(sorted(v * 1000 for v in errors["lag"]), 0.99)
    label = f"{who}, {streams:>3} streams{' + scrapes' if scraped else ''}"
    print(f"{label}: {c['probes']} probes, {c['events']} events, {c['failed']} failed, "
          f"CPU {out['cpu'] / max(1, c['events']) * 1e6:.0f} us/event, concurrency reached "
          f"{c['most']}, loop lag p99 {lag_p99:.3f} ms"
          f"{' (SATURATED)' if lag_p99 > saturated_ms else ''}")
    for key, name in (("ttft", "TTFT error"), ("first", "1st token"), ("itl", "ITL error"),
                      ("e2e", "E2E error")):
        print(f"    {name:11} {summary(errors[key])}")
    print(f"    targets: {verdict(errors)}", flush=True)
    return {"who": who, "streams": streams, "scraped": scraped, **c, "loop_lag_p99_ms": lag_p99,
            "cpu_us_per_event": out["cpu"] / max(1, c["events"]) * 1e6}


if __name__ == "__main__":
    main()
