"""llmmon under attack, beside the same run without one: does it still answer, and does it
still time its probes truly?

For each attack a fresh daemon probes a healthy simulator every 0.5 s (TTFT 50 ms). While
the attack runs, the benchmark asks /healthz every 50 ms and /metrics every 250 ms (a fresh
connection each, 1 s timeout), then reads the healthy endpoint's probes from /probes. Rows:

  clean      nothing
  flood      the daemon also probes an endpoint streaming one-character events without end
             (timeout 2 s, max_response_bytes 64 MiB)
  idle       N connections opened and left silent
  slowloris  N connections dripping a header byte every 0.5 s
  tls        TLS on; N connections that never send a ClientHello
  pipeline   2 connections each writing 2,000 pipelined requests at a time, and reading
  reload     8 threads POSTing /-/reload as fast as they can
  bcrypt     basic auth on; 16 threads sending a wrong password

    python benchmarks/hostile.py [--seconds 8] [--connections 500] [--only flood,idle]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import trustme
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmmon.sim.flood import FLOODS, Flood

PASSWORD = "right-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Run:
    """One daemon (and its healthy simulator) for one attack."""

    def __init__(self, attack: str, workdir: Path) -> None:
        self.attack, self.workdir = attack, workdir
        self.sim_port, self.port = free_port(), free_port()
        self.sim = subprocess.Popen([sys.executable, "-m", "llmmon.sim.simulator", "--port",
                                     str(self.sim_port), "--ttft", "0.05", "--itl", "0.005"],
                                    stdout=subprocess.DEVNULL)
        self.flood = Flood(FLOODS["tiny_events"], seconds=3600) if attack == "flood" else None
        self.scheme = "https" if attack == "tls" else "http"
        self.auth = ("prom", PASSWORD) if attack == "bcrypt" else None
        config = self._config()
        args = [sys.executable, "-m", "llmmon", "run", "-c", str(config), "--listen",
                f"127.0.0.1:{self.port}"]
        if attack == "reload":
            args.append("--web.enable-lifecycle")
        self.log = (workdir / "daemon.log").open("wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"

    def _config(self) -> Path:
        endpoints: list[dict[str, Any]] = [{
            "name": "healthy", "provider": "openai", "url": f"http://127.0.0.1:{self.sim_port}/v1",
            "model": "m", "interval": "500ms", "timeout": "5s", "max_tokens": 8}]
        if self.flood:
            endpoints.append({"name": "flood", "provider": "openai", "model": "m",
                              "url": f"http://127.0.0.1:{self.flood.port}/v1", "interval": "1s",
                              "timeout": "2s", "max_response_bytes": 64 << 20})
        config: dict[str, Any] = {"endpoints": endpoints, "probe_history": 200,
                                  "samplers": {"gpu": {"enabled": False}}}
        web: dict[str, Any] = {}
        if self.attack == "tls":
            ca = trustme.CA()
            cert = ca.issue_cert("127.0.0.1")
            cert.cert_chain_pems[0].write_to_path(str(self.workdir / "tls.crt"))
            cert.private_key_pem.write_to_path(str(self.workdir / "tls.key"))
            web["tls_server_config"] = {"cert_file": str(self.workdir / "tls.crt"),
                                        "key_file": str(self.workdir / "tls.key")}
        if self.attack == "bcrypt":
            hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
            web["basic_auth_users"] = {"prom": hashed}
        if web:
            (self.workdir / "web.yaml").write_text(yaml.safe_dump(web))
            config["web_config_file"] = str(self.workdir / "web.yaml")
        path = self.workdir / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def get(self, path: str, timeout: float = 1.0) -> httpx.Response:
        return httpx.get(self.url + path, timeout=timeout, verify=False, auth=self.auth)

    def wait_ready(self) -> bool:
        """Whether the healthy endpoint's first probe shows within 30 s (an attack that
        freezes the daemon may keep it from ever showing: measured all the same)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.get("/probes?endpoint=healthy&format=json").json()["probes"]:
                    return True
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        return False

    def close(self) -> None:
        for proc in (self.proc, self.sim):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.flood:
            self.flood.close()
        self.log.close()


def hold(run: Run, count: int, stop: threading.Event, drip: bool) -> None:
    """Open ``count`` connections and keep them silent (or dripping) until ``stop``."""
    held: list[socket.socket] = []
    for _ in range(count):
        try:
            held.append(socket.create_connection(("127.0.0.1", run.port), timeout=1))
        except OSError:
            break
    while not stop.wait(0.5):
        if drip:
            for sock in held:
                try:
                    sock.send(b"X")
                except OSError:
                    pass
    for sock in held:
        sock.close()


def hammer(run: Run, threads: int, stop: threading.Event, call: Callable[[], Any]) -> None:
    def loop() -> None:
        while not stop.is_set():
            try:
                call()
            except (httpx.HTTPError, OSError):
                pass

    workers = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    stop.wait()
    for worker in workers:
        worker.join(5)


def pipelined(port: int, count: int = 2000) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * count)
        received = 0
        while received < count:
            data = sock.recv(1 << 16)
            if not data:
                return
            received += data.count(b"HTTP/1.1 ")


def attack_thread(run: Run, connections: int, stop: threading.Event) -> threading.Thread | None:
    target: Callable[[], None] | None = None
    if run.attack in ("idle", "slowloris", "tls"):
        def target() -> None:
            hold(run, connections, stop, drip=run.attack == "slowloris")
    elif run.attack == "pipeline":
        def target() -> None:
            hammer(run, 2, stop, lambda: pipelined(run.port))
    elif run.attack == "reload":
        def target() -> None:
            hammer(run, 8, stop, lambda: httpx.post(run.url + "/-/reload", timeout=2))
    elif run.attack == "bcrypt":
        def target() -> None:
            hammer(run, 16, stop, lambda: httpx.get(run.url + "/metrics", timeout=2,
                                                    verify=False, auth=("prom", "wrong")))
    if target is None:
        return None
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def measure(run: Run, seconds: float, connections: int) -> dict[str, Any]:
    stop = threading.Event()
    started = time.time()
    attacker = attack_thread(run, connections, stop)
    time.sleep(0.5)  # let the crowd gather before measuring
    health: list[float] = []
    scrapes = scrapes_ok = 0
    deadline = time.monotonic() + seconds
    next_scrape = time.monotonic()
    while time.monotonic() < deadline:
        t = time.monotonic()
        try:
            run.get("/healthz", timeout=2.0)
            health.append(time.monotonic() - t)
        except httpx.HTTPError:
            health.append(2.0)
        if time.monotonic() >= next_scrape:
            next_scrape += 0.25
            scrapes += 1
            try:
                scrapes_ok += run.get("/metrics").status_code == 200
            except httpx.HTTPError:
                pass
        time.sleep(max(0.0, 0.05 - (time.monotonic() - t)))
    stop.set()
    if attacker:
        attacker.join(10)
    try:
        probes = run.get("/probes?endpoint=healthy&format=json", timeout=5).json()["probes"]
    except (httpx.HTTPError, ValueError):
        probes = []
    window = [p for p in probes if p["time"] >= time.strftime(
        "%Y-%m-%dT%H:%M:%S", time.gmtime(started))]
    ttft = [p["seconds"]["ttft"] for p in window if p["outcome"] == "success"]
    dns = [p["seconds"].get("dns", 0.0) for p in window if p["outcome"] == "success"]
    e2e = [p["seconds"]["e2e"] for p in window if p["outcome"] == "success"]
    return {"health": health, "scrapes": (scrapes_ok, scrapes), "ttft": ttft, "e2e": e2e,
            "dns": dns, "failed": sum(p["outcome"] != "success" for p in window)}


def ms(values: list[float], q: float | None = None) -> str:
    if not values:
        return "-"
    if q is None:
        return f"{statistics.median(values) * 1000:.1f}"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--only",
                        default="clean,flood,idle,slowloris,tls,pipeline,reload,bcrypt")
    args = parser.parse_args()
    print(f"# {args.seconds:g} s per attack, {args.connections} connections, "
          f"{os.cpu_count()} CPUs")
    print(f"{'attack':<10} {'healthz p50':>11} {'p99':>8} {'max':>8} {'scrapes ok':>11} "
          f"{'TTFT p50':>9} {'TTFT p99':>9} {'E2E p50':>8} {'dns p99':>8} {'failed':>6}")
    for attack in args.only.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            run = Run(attack, Path(tmp))
            try:
                if not run.wait_ready():
                    print(f"{attack}: no probe shown within 30 s; measuring all the same")
                r = measure(run, args.seconds, args.connections)
            finally:
                run.close()
        ok, total = r["scrapes"]
        print(f"{attack:<10} {ms(r['health']):>11} {ms(r['health'], 0.99):>8} "
              f"{ms(r['health'], 1.0):>8} {f'{ok}/{total}':>11} {ms(r['ttft']):>9} "
              f"{ms(r['ttft'], 0.99):>9} {ms(r['e2e']):>8} {ms(r['dns'], 0.99):>8} "
              f"{r['failed']:>6}", flush=True)


if __name__ == "__main__":
    main()
