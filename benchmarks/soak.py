"""Soak: does llmmon grow while endpoints misbehave for a long time?

Starts simulators on loopback (one healthy OpenAI, one healthy Anthropic, one rotating
through every fault the simulator plays, one that never answers), and llmmon probing all of
them every second with its samplers at 1 s, scrapes /metrics every second, and samples RSS,
open fds, threads, asyncio tasks and the series count every --sample-every seconds. Fails
(exit 1) when any of them grows past its allowance after the warm-up.

    python benchmarks/soak.py                       # an hour
    python benchmarks/soak.py --duration 60 --sample-every 10   # what CI runs
"""

from __future__ import annotations

import argparse
import itertools
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

FAULTS = ["", "http_429", "http_401", "html", "truncate", "reset", "malformed", "", "hang"]
# Growth allowed between the warm-up's end and the run's end.
ALLOWED = {"rss_mb": 8.0, "fds": 4, "threads": 2, "tasks": 8, "series": 0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def simulator(port: int, *flags: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "llmmon.sim.simulator", "--port", str(port),
                             "--ttft", "0.05", "--itl", "0.01", *flags],
                            stdout=subprocess.DEVNULL)


def value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return float("nan")


def snapshot(text: str) -> dict[str, float]:
    return {
        "rss_mb": value(text, "process_resident_memory_bytes") / 2**20,
        "fds": value(text, "process_open_fds"),
        "threads": value(text, "llmmon_threads"),
        "tasks": value(text, "llmmon_asyncio_tasks"),
        "series": sum(1 for line in text.splitlines() if line and not line.startswith("#")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=3600)
    parser.add_argument("--sample-every", type=float, default=60)
    args = parser.parse_args()
    ports = {name: free_port() for name in ("openai", "anthropic", "faulty", "hang", "llmmon")}
    sims = [simulator(ports["openai"]), simulator(ports["anthropic"]),
            simulator(ports["faulty"]), simulator(ports["hang"], "--fault", "hang")]
    base = "http://127.0.0.1:{}"
    config = {
        "listen": f"127.0.0.1:{ports['llmmon']}",
        "defaults": {"interval": "1s", "timeout": "2s", "max_tokens": 16},
        "endpoints": [
            {"name": "openai", "provider": "openai", "model": "sim",
             "url": base.format(ports["openai"]) + "/v1",
             "prompts": [{"name": "capital", "text": "What is the capital of France?",
                          "expect": {"contains": "Paris"}}]},
            {"name": "anthropic", "provider": "anthropic", "model": "sim",
             "url": base.format(ports["anthropic"])},
            {"name": "faulty", "provider": "openai", "model": "sim",
             "url": base.format(ports["faulty"]) + "/v1"},
            {"name": "hang", "provider": "openai", "model": "sim",
             "url": base.format(ports["hang"]) + "/v1", "interval": "1s", "timeout": "3s"},
        ],
        "samplers": {"host": {"interval": "1s"}, "gpu": {"interval": "1s"}},
    }
    workdir = Path(tempfile.mkdtemp(prefix="llmmon-soak-"))
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    daemon = subprocess.Popen([sys.executable, "-m", "llmmon", "run", "-c",
                               str(workdir / "config.yaml")], stdout=subprocess.DEVNULL,
                              stderr=open(workdir / "llmmon.log", "wb"))  # noqa: SIM115
    samples: list[dict[str, float]] = []
    failed_scrapes = 0
    try:
        url = base.format(ports["llmmon"])
        wait_ready(url)
        faults = itertools.cycle(FAULTS)
        start = time.monotonic()
        next_sample = start + args.sample_every
        next_fault = start
        with httpx.Client(timeout=10) as client:
            while time.monotonic() - start < args.duration:
                now = time.monotonic()
                if now >= next_fault:
                    fault = next(faults)
                    try:
                        client.post(base.format(ports["faulty"]) + "/sim/config",
                                    json={"fault": fault})
                    except httpx.HTTPError:
                        pass
                    next_fault = now + 5
                try:
                    text = client.get(url + "/metrics").text
                except httpx.HTTPError:
                    failed_scrapes += 1
                    text = ""
                if now >= next_sample and text:
                    samples.append(snapshot(text))
                    s = samples[-1]
                    print(f"{now - start:7.0f} s  RSS {s['rss_mb']:6.1f} MB  fds {s['fds']:3.0f}  "
                          f"threads {s['threads']:3.0f}  tasks {s['tasks']:3.0f}  "
                          f"series {s['series']:5.0f}", flush=True)
                    next_sample += args.sample_every
                time.sleep(1.0)
        if daemon.poll() is not None:
            print("llmmon exited during the soak")
            return 1
    finally:
        daemon.terminate()
        code = daemon.wait(10)
        for sim in sims:
            sim.terminate()
            sim.wait(10)
    print(f"scrapes that failed: {failed_scrapes}; llmmon exit code on SIGTERM: {code}")
    return verdict(samples, failed_scrapes, code)


def wait_ready(url: str, path: str = "/readyz", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not become ready")


def verdict(samples: list[dict[str, float]], failed_scrapes: int, code: int) -> int:
    if len(samples) < 3:
        print("too short to judge: need three samples")
        return 1
    warm = samples[1]  # the first sample still includes start-up
    last = samples[-1]
    grown = {k: last[k] - warm[k] for k in ALLOWED if last[k] - warm[k] > ALLOWED[k]}
    for key, growth in grown.items():
        print(f"GREW: {key} by {growth:.1f} (allowed {ALLOWED[key]})")
    ok = not grown and failed_scrapes == 0 and code == 0
    print("soak: PASS" if ok else "soak: FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
