"""Shared fixtures and helpers: the daemon and the simulator as real processes on loopback,
in-process servers, and endpoint configs and probes for tests that run probes themselves."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import yaml
from hypothesis import settings

from llmmon.config import EndpointConfig, Prompt
from llmmon.config.settings import Settings
from llmmon.daemon.httpserver import HTTPServer, Request, Response
from llmmon.probe.result import ProbeResult
from llmmon.probe.run import run_probe
from llmmon.probe.transport import make_client
from llmmon.sim.simulator import SimSettings, Simulator

PYTHON = sys.executable

# The suite's property tests run the same examples every time (a run passes or fails the same
# way on every machine); `HYPOTHESIS_PROFILE=explore` searches afresh, with many more examples,
# and what it finds becomes a literal case beside the property.
settings.register_profile("repeatable", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", max_examples=3000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sim(**settings): SimSettings of the in-process simulator (`sim`, `start_sim`)")


# --- waiting ---------------------------------------------------------------------------


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def wait_for_async(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """wait_for for async tests: the event loop goes on running while it waits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def reported_port(proc: subprocess.Popen[Any], log_path: Path, pattern: str, what: str,
                  timeout: float = 30) -> int:
    """The port a process started on port 0 names in its log once it listens.

    The process binds a free port itself, so no other process can take the port between
    choosing it and binding it, as with a port picked beforehand. `pattern` captures the
    port in its first group."""
    found: list[int] = []

    def listening() -> bool:
        log = log_path.read_text(errors="replace")
        if match := re.search(pattern, log):
            found.append(int(match.group(1)))
            return True
        assert proc.poll() is None, f"{what} exited ({proc.returncode}) early:\n{log}"
        return False

    wait_for(listening, timeout, f"{what} to report its port")
    return found[0]


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


# --- endpoints and probes run by the test itself ---------------------------------------

COUNT = Prompt(name="count", text="Count from 1 to 10, separated by commas.")


def provider_url(base: str, provider: str = "openai") -> str:
    """An endpoint's URL on the server at `base`: OpenAI-style URLs name the API version
    (…/v1); the other providers' name the server, and they add their own paths."""
    return base + "/v1" if provider == "openai" else base


def make_endpoint(url: str, provider: str = "openai", **kw: Any) -> EndpointConfig:
    """One endpoint's config, validated as a config file's endpoints are (defaults merged,
    the provider's own config class), named "t", model "m", 5 s timeout unless `kw` says
    otherwise."""
    data = {"name": "t", "provider": provider, "url": url, "model": "m", "timeout": "5s", **kw}
    endpoint: EndpointConfig = Settings(endpoints=[data]).endpoints[0]
    return endpoint


async def probe(target: str | EndpointConfig, prompt: Prompt = COUNT, **kw: Any
                ) -> ProbeResult:
    """One probe on a client of its own: of `target` when it is an endpoint's config, else
    of ``make_endpoint(target, **kw)``."""
    endpoint = make_endpoint(target, **kw) if isinstance(target, str) else target
    async with make_client(endpoint) as client:
        return await run_probe(client, endpoint, prompt)


async def probe_twice(url: str, prompt: Prompt = COUNT, connections: int = 4
                      ) -> tuple[ProbeResult, ProbeResult]:
    """Two probes one after the other on one client (a kept connection where the server
    allows it), prompts sent as written."""
    endpoint = make_endpoint(url, cache_bust=False)
    async with make_client(endpoint, connections) as client:
        return (await run_probe(client, endpoint, prompt),
                await run_probe(client, endpoint, prompt))


# --- the daemon as a process -----------------------------------------------------------


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    port: int  # 0 until it listens; stays 0 for one started with wait_ready=False
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


# llmmon.daemon.runtime logs this at INFO once the exporter is bound.
LISTENING = r"listening on 127\.0\.0\.1:(\d+)"


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[dict[str, object]], Path]:
    def write(data: dict[str, object], name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data))
        return path

    return write  # type: ignore[return-value]


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start `llmmon run` on a port of its own choosing (127.0.0.1:0), read from its log."""
    daemons: list[Daemon] = []

    def start(*args: str, env: dict[str, str] | None = None, wait_ready: bool = True,
              scheme: str = "http") -> Daemon:
        log_path = tmp_path / f"daemon-{len(daemons)}.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("LLMMON_")}
        full_env.update(env or {})
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [PYTHON, "-m", "llmmon", "run", "--listen", "127.0.0.1:0", *args],
                stdout=log, stderr=subprocess.STDOUT, env=full_env,
            )
        daemon = Daemon(proc, 0, log_path, scheme)
        daemons.append(daemon)
        if wait_ready:
            daemon.port = reported_port(proc, log_path, LISTENING, "the daemon", 20)

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


# --- the simulator as a process --------------------------------------------------------


@dataclass
class SimProcess:
    proc: subprocess.Popen[bytes]
    port: int
    model: str  # a unique tag on its command line (--tag), to find the process by

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def configure(self, **settings: object) -> None:
        httpx.post(f"http://127.0.0.1:{self.port}/sim/config", json=settings, timeout=5
                   ).raise_for_status()


@contextmanager
def spawn_simulator(log_path: Path, *args: str) -> Iterator[SimProcess]:
    """The simulator in its own process, as a real endpoint would be, on a port of its own
    choosing, which it prints; stopped on exit."""
    model = f"sim-{uuid.uuid4().hex[:12]}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([PYTHON, "-m", "llmmon.sim.simulator", "--port", "0",
                                 "--tag", model, *args], stdout=log, stderr=subprocess.STDOUT)
    try:
        port = reported_port(proc, log_path, r"simulator listening on http://127\.0\.0\.1:(\d+)/",
                             "the simulator")
        yield SimProcess(proc, port, model)
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.fixture
def simulator_process(tmp_path: Path) -> Iterator[SimProcess]:
    """A simulator process: 30 ms to the first token, 5 ms between tokens."""
    with spawn_simulator(tmp_path / "simulator.log", "--ttft", "0.03", "--itl", "0.005") as sim:
        yield sim


# --- servers inside the test's event loop ----------------------------------------------

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


class SimServer(Simulator):
    """The simulator served from the test's event loop, knowing where it listens."""

    port = 0
    scheme = "http"

    async def start(self, host: str = "127.0.0.1", port: int = 0,
                    ssl_context: ssl.SSLContext | None = None) -> int:
        self.port = await super().start(host, port, ssl_context)
        self.scheme = "https" if ssl_context else "http"
        return self.port

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def url(self, provider: str = "openai") -> str:
        return provider_url(self.base, provider)


@pytest.fixture
async def start_sim(request: pytest.FixtureRequest
                    ) -> AsyncIterator[Callable[..., Awaitable[SimServer]]]:
    """Start in-process simulators: SimSettings from the test's `sim` marker, then `settings`;
    TLS with `ssl_context`."""
    marker = request.node.get_closest_marker("sim")
    defaults = dict(marker.kwargs) if marker else {}
    sims: list[SimServer] = []

    async def start(ssl_context: ssl.SSLContext | None = None, **settings: Any) -> SimServer:
        sim = SimServer(SimSettings(**{**defaults, **settings}))
        sims.append(sim)
        await sim.start(ssl_context=ssl_context)
        return sim

    yield start
    for sim in sims:
        await sim.close()


@pytest.fixture
async def sim(start_sim: Callable[..., Awaitable[SimServer]]) -> SimServer:
    """One started in-process simulator (settings from the `sim` marker)."""
    return await start_sim()


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A server certificate for 127.0.0.1 and localhost, its key, and the CA that signed it."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path, ca_path = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    ca.cert_pem.write_to_path(str(ca_path))
    return cert_path, key_path, ca_path


# Real servers, shared by the whole session (after the helpers above, which they use).
from tests.realservers import litellm_proxy, llama_cpp_server, llama_server  # noqa: E402, F401
