"""llmmon's own footprint (targets: RSS ≤ 40 MB, CPU ≤ 1% of a core, /metrics render ≤ 5 ms at
100 endpoints, probe timing shift ≤ 0.1 ms while scraped every 100 ms).

1. RSS and CPU share of a daemon probing 10 simulated endpoints every 15 s, samplers every 5 s.
2. /metrics render time with 10, 100 and 1,000 endpoints' worth of series, every histogram
   holding observations (median of repeated renders, in this process).
3. The shift in probe timing error (ITL and first-token stamps against the simulator's send
   stamps) when this process's /metrics is scraped every 100 ms, 16 streams.

    python benchmarks/footprint.py [--seconds 120]
    python benchmarks/footprint.py --breakdown   # the RSS each import step adds
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client import CollectorRegistry, generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak import free_port, simulator, wait_ready
from timing_accuracy import run_spread, with_scrapes

from llmmon.metrics import families
from llmmon.metrics.exposition import gzip_parts
from llmmon.metrics.recorder import Metrics
from llmmon.probe.result import ProbeResult


def proc_stat(pid: int) -> tuple[float, float]:
    """(CPU seconds, RSS MiB) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    import os

    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return cpu, rss


FIXED = "prometheus_client, httpx, psutil, pynvml, apscheduler, pydantic_settings"
# What the fixed dependencies load once used, not only imported: httpx sends through httpcore
# (its h11 and anyio parts load with the first request; httpcore's locks and events are
# anyio's, whose asyncio backend loads with the first), APScheduler schedules with a scheduler
# class (which imports concurrent.futures.process, hence multiprocessing).
TRANSPORT = ("httpcore, h11, anyio, httpcore._backends.anyio, anyio._backends._asyncio, "
             "encodings.idna")
AS_USED = f"{TRANSPORT}, apscheduler.schedulers.asyncio"


# The measuring process's own RSS in MiB, as code run inside it.
RSS = ("import os\ndef rss(): return int(open('/proc/self/statm').read().split()[1]) * "
       "os.sysconf('SC_PAGE_SIZE') / 2**20\n")


def import_floor(modules: str = FIXED) -> float:
    """RSS (MiB) of a Python that imported ``modules`` and nothing else."""
    code = f"import {modules}\n{RSS}print(rss())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return float(done.stdout)


def daemon_footprint(seconds: float, endpoints: int = 10, interval: str = "15s") -> float:
    """RSS (MiB) of a daemon probing ``endpoints`` simulated endpoints; prints it and its
    CPU share."""
    sim_port, port = free_port(), free_port()
    sim = simulator(sim_port)
    config = {"listen": f"127.0.0.1:{port}",
              "defaults": {"interval": interval, "timeout": "10s", "max_tokens": 32},
              "endpoints": [{"name": f"ep{i}", "provider": "openai", "model": "sim",
                             "url": f"http://127.0.0.1:{sim_port}/v1"}
                            for i in range(endpoints)],
              "samplers": {"host": {"interval": "5s"}, "gpu": {"interval": "5s"}}}
    path = Path(tempfile.mkdtemp()) / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    daemon = subprocess.Popen([sys.executable, "-m", "llmmon", "run", "-c", str(path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        time.sleep(20)  # past start-up and the first round of probes
        cpu0, _ = proc_stat(daemon.pid)
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:  # scraped as Prometheus scrapes it, gzip asked
            httpx.get(url + "/metrics", headers={"Accept-Encoding": "gzip"}, timeout=10)
            time.sleep(min(5.0, max(0.0, seconds - (time.monotonic() - t0))))
        cpu1, rss = proc_stat(daemon.pid)
        share = (cpu1 - cpu0) / (time.monotonic() - t0)
        print(f"daemon, {endpoints} endpoints / {interval}, samplers / 5 s, over "
              f"{seconds:.0f} s, scraped every 5 s: RSS {rss:.1f} MiB, CPU {share:.2%} of a "
              "core", flush=True)
        return rss
    finally:
        daemon.terminate()
        daemon.wait(10)
        sim.terminate()
        sim.wait(10)


# Import steps of a daemon, in an order where each adds only its own share (a package's
# __init__ loads its siblings, so llmmon.config stands for every config model).
STEPS = ("yaml", "apscheduler.schedulers.asyncio", TRANSPORT, "isal.isal_zlib, orjson",
         "llmmon.config", "llmmon.metrics.recorder", "llmmon.providers", "llmmon.probe.run",
         "llmmon.samplers", "llmmon.probe.spread", "llmmon.evals.runner",
         "llmmon.daemon.runtime, llmmon.daemon.extra", "llmmon.cli")


def import_breakdown() -> None:
    """RSS added by each import step over the fixed dependencies, in one fresh process."""
    code = f"import {FIXED}\n{RSS}floor = last = rss()\n"
    for step in STEPS:
        code += (f"import {step}\nnow = rss()\nprint(f'{{now - last:6.2f}} MiB  "
                 f"(total {{now - floor:5.2f}})  {step}')\nlast = now\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    print("RSS each import step adds over the fixed dependencies:\n" + done.stdout, end="")


def rss_by_endpoints(seconds: float) -> None:
    floor, used = import_floor(), import_floor(f"{FIXED}, {AS_USED}")
    print(f"import floor (the fixed dependencies imported): RSS {floor:.1f} MiB; with what "
          f"they load once used (httpcore and anyio's asyncio backend, APScheduler's "
          f"scheduler): {used:.1f} MiB")
    rss = {n: daemon_footprint(seconds, n, "15s" if n <= 10 else "60s")
           for n in (10, 100, 1000)}
    for name, base in (("the import floor", floor), ("the floor as used", used)):
        above = (rss[10] - base) * 2**20 / 1e6  # the target is in MB
        print(f"RSS at 10 endpoints above {name}: {above:.1f} MB (target ≤ 10 MB: "
              f"{'met' if above <= 10 else 'NOT met'})")
    per = ((rss[100] - rss[10]) / 90 * 1024, (rss[1000] - rss[100]) / 900 * 1024)
    print(f"per added endpoint: {per[0]:.0f} KiB (10→100), {per[1]:.0f} KiB (100→1,000); "
          f"1,000 endpoints {rss[1000]:.1f} MiB")


def median_ms(render: Any, repeat: int, *args: Any) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        render(*args)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def render_times() -> None:
    for endpoints in (10, 100, 1000):
        registry = CollectorRegistry()
        metrics = Metrics(registry)
        for i in range(endpoints):
            labels = (f"endpoint-{i}", "openai", "meta-llama/Llama-3.1-8B-Instruct")
            metrics.add_endpoint(labels, "vllm.example", ["arithmetic"])
            metrics.record_probe(labels, ProbeResult(
                f"endpoint-{i}", "arithmetic", status=200, ttft=0.2, e2e=1.5,
                itl=[0.02] * 31, prompt_tokens=20, output_tokens=32, tokens_from_usage=True,
                content_chunks=32, phases={"connect": 0.001, "wait": 0.1}, check_passed=True,
                finished_unix=time.time()))
        metrics.exposition(False)  # the first render fills the caches
        ours = median_ms(metrics.exposition, 20, False)
        om = median_ms(metrics.exposition, 20, True)
        reference = median_ms(generate_latest, 5 if endpoints < 1000 else 2, registry)
        size = len(metrics.exposition(False))
        repeat = 20 if endpoints < 1000 else 5
        zipped = median_ms(lambda m: gzip_parts(m.exposition_parts(False)), repeat, metrics)
        zlib1 = median_ms(lambda m: gzip.compress(m.exposition(False), compresslevel=1),
                          repeat, metrics)
        print(f"scrape with gzip (render and compress, as /metrics answers "
              f"Accept-Encoding: gzip), {endpoints:>4} endpoints: {zipped:7.2f} ms "
              f"({len(gzip_parts(metrics.exposition_parts(False))) / 1024:.0f} KiB); "
              f"gzip of the joined text with zlib level 1, the reference: {zlib1:7.2f} ms")
        print(f"render, {endpoints:>4} endpoints ({size / 1024:.0f} KiB): llmmon {ours:7.2f} ms "
              f"(OpenMetrics {om:7.2f} ms); prometheus-client generate_latest {reference:8.1f}"
              f" ms, {reference / ours:.0f}x")
        # after one probe per endpoint, every child renders again once
        for i in range(endpoints):
            metrics.counter(families.PROBE_ERRORS).labels(f"endpoint-{i}", "openai",
                                                  "meta-llama/Llama-3.1-8B-Instruct",
                                                  "timeout").inc()
        again = median_ms(metrics.exposition, 1, False)
        print(f"       after a change in every endpoint: {again:.2f} ms")


def timing_shift(seconds: float) -> None:
    sim_port = free_port()
    sim = simulator(sim_port)
    base = f"http://127.0.0.1:{sim_port}/v1"
    wait_ready(f"http://127.0.0.1:{sim_port}", "/v1/models")
    try:
        plain = run_spread(16, seconds, base, 1)
        scraped = with_scrapes(16, seconds, base, 100, 1)
    finally:
        sim.terminate()
        sim.wait(10)
    for key, name in (("itl", "ITL"), ("first", "first-token stamp")):
        a, b = sorted(plain["errors"][key]), sorted(scraped["errors"][key])
        p99 = lambda v: v[int(0.99 * (len(v) - 1))] * 1000  # noqa: E731
        print(f"{name} error p99, 16 streams: {p99(a):.3f} ms plain, {p99(b):.3f} ms while "
              f"100 endpoints' /metrics is scraped 20 times a second (gzip): shift "
              f"{p99(b) - p99(a):+.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--only-render", action="store_true")
    parser.add_argument("--breakdown", action="store_true",
                        help="only the RSS each import step adds, then stop")
    args = parser.parse_args()
    if args.breakdown:
        import_breakdown()
        return
    render_times()
    if args.only_render:
        return
    timing_shift(min(args.seconds, 20))
    rss_by_endpoints(args.seconds)


if __name__ == "__main__":
    main()
