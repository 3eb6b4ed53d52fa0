"""Shared fixtures: the daemon and the simulator as real processes on loopback."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from llmmon.daemon.httpserver import HTTPServer, Request, Response

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in a text exposition, or None."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(4))
    return None


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def get(self, path: str, **kw: object) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **kw)  # type: ignore[arg-type]

    def metrics(self) -> str:
        return self.get("/metrics").text

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[dict[str, object]], Path]:
    def write(data: dict[str, object], name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data))
        return path

    return write  # type: ignore[return-value]


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    daemons: list[Daemon] = []

    def start(*args: str, env: dict[str, str] | None = None, wait_ready: bool = True,
              scheme: str = "http") -> Daemon:
        port = free_port()
        log_path = tmp_path / f"daemon-{port}.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("LLMMON_")}
        full_env.update(env or {})
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [PYTHON, "-m", "llmmon", "run", "--listen", f"127.0.0.1:{port}", *args],
                stdout=log, stderr=subprocess.STDOUT, env=full_env,
            )
        daemon = Daemon(proc, port, log_path, scheme)
        daemons.append(daemon)
        if wait_ready:
            def ready() -> bool:
                assert proc.poll() is None, f"daemon exited early:\n{daemon.log()}"
                try:
                    return daemon.get("/readyz", verify=False).status_code == 200
                except httpx.HTTPError:
                    return False
            wait_for(ready, 20, "the daemon to be ready")
        return daemon

    yield start
    for daemon in daemons:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(5)


@dataclass
class SimProcess:
    proc: subprocess.Popen[str]
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def configure(self, **settings: object) -> None:
        httpx.post(f"http://127.0.0.1:{self.port}/sim/config", json=settings, timeout=5
                   ).raise_for_status()


@pytest.fixture
def simulator_process() -> Iterator[SimProcess]:
    """The simulator in its own process, as a real endpoint would be."""
    port = free_port()
    proc = subprocess.Popen([PYTHON, "-m", "llmmon.sim.simulator", "--port", str(port),
                             "--ttft", "0.03", "--itl", "0.005"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening" in line, line
    yield SimProcess(proc, port)
    proc.terminate()
    proc.wait(5)


Handler = Callable[[Request], Awaitable[Response]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Start in-process HTTP servers with a given handler; gives their base URL (…/v1)."""
    servers: list[HTTPServer] = []

    async def start(handler: Handler) -> str:
        server = HTTPServer(handler)
        servers.append(server)
        return f"http://127.0.0.1:{await server.start('127.0.0.1', 0)}/v1"

    yield start
    for server in servers:
        await server.close()
