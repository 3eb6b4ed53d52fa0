"""Clients that hammer the daemon's own HTTP face: /-/reload and basic auth.

/-/reload is off unless the daemon was started with --web.enable-lifecycle, sits behind the
same auth as /metrics, and is rate-limited; its answer never names files or keys. Wrong
passwords cost one bcrypt thread at most, never asyncio's default executor where the probes
resolve names, and a password seen before costs no bcrypt at all."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import yaml

from llmmon.config.settings import load_settings
from llmmon.daemon.auth import WebConfig, WebSecurity
from llmmon.daemon.runtime import Runtime
from tests.conftest import Daemon, SimProcess, sample, wait_for

LIFECYCLE = "--web.enable-lifecycle"


def _post(daemon: Daemon, **kw: Any) -> httpx.Response:
    return httpx.post(daemon.url + "/-/reload", timeout=10, **kw)


def _config(write_config: Callable[..., Path], sim: SimProcess | None = None,
            **extra: object) -> Path:
    endpoints = [{"name": "sim", "provider": "openai", "url": sim.base, "model": "m",
                  "interval": "1s", "timeout": "5s"}] if sim else []
    return write_config({"endpoints": endpoints, **extra})


def _web(tmp_path: Path, password: bytes, rounds: int = 4) -> Path:
    path = tmp_path / "web.yaml"
    path.write_text(yaml.safe_dump({"basic_auth_users": {
        "prom": bcrypt.hashpw(password, bcrypt.gensalt(rounds=rounds)).decode()}}))
    return path


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- /-/reload -------------------------------------------------------------------------


def test_reload_is_off_by_default_and_sighup_still_reloads(
        start_daemon: Callable[..., Daemon], write_config: Callable[..., Path]) -> None:
    """Without --web.enable-lifecycle, anyone reaching the port gets Prometheus's 403; the
    operator's SIGHUP goes on working."""
    daemon = start_daemon("-c", str(_config(write_config)))
    for method in ("POST", "PUT"):
        denied = httpx.request(method, daemon.url + "/-/reload", timeout=10)
        assert denied.status_code == 403
        assert "lifecycle api is not enabled" in denied.text.lower()
    assert httpx.get(daemon.url + "/-/reload", timeout=10).status_code == 405
    assert "configuration reloaded" not in daemon.log()

    stamp = sample(daemon.metrics(), "llmmon_config_last_reload_timestamp_seconds")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration reloaded" in daemon.log(), 10, "SIGHUP to reload")
    assert sample(daemon.metrics(), "llmmon_config_last_reload_timestamp_seconds") != stamp
    assert daemon.stop() == 0


def test_reload_with_the_flag_is_behind_the_metrics_auth(
        tmp_path: Path, start_daemon: Callable[..., Daemon],
        write_config: Callable[..., Path]) -> None:
    web = _web(tmp_path, b"pass-word")
    daemon = start_daemon("-c", str(_config(write_config, web_config_file=str(web))),
                          LIFECYCLE)
    assert _post(daemon).status_code == 401
    assert _post(daemon, auth=("prom", "nope")).status_code == 401
    assert "configuration reloaded" not in daemon.log()
    assert _post(daemon, auth=("prom", "pass-word")).status_code == 200
    wait_for(lambda: "configuration reloaded" in daemon.log(), 5, "the reload to be logged")


def test_rejected_reload_answers_without_paths_or_keys(
        tmp_path: Path, start_daemon: Callable[..., Daemon],
        write_config: Callable[..., Path]) -> None:
    """The problems name the file and the key: the log has them, the answer does not."""
    path = _config(write_config)
    daemon = start_daemon("-c", str(path), LIFECYCLE)
    path.write_text(yaml.safe_dump({"web_config_file": str(tmp_path / "missing-web.yaml"),
                                    "scrape_everything": True}))
    rejected = _post(daemon)
    assert rejected.status_code == 500
    assert "reload rejected, see the log" in rejected.text
    for named in (str(tmp_path), "missing-web", "scrape_everything", "yaml"):
        assert named not in rejected.text
    assert "scrape_everything" in daemon.log()
    assert sample(daemon.metrics(), "llmmon_config_last_reload_successful") == 0


def test_reload_flood_is_rate_limited(start_daemon: Callable[..., Daemon],
                                      write_config: Callable[..., Path]) -> None:
    """A bounded burst from 4 clients: a few reloads (a burst of 3, then about one a second),
    the rest 429 with Retry-After; the log grows by a line per reload, not per request."""
    daemon = start_daemon("-c", str(_config(write_config)), LIFECYCLE)
    statuses: Counter[int] = Counter()
    retry_after: set[str | None] = set()
    lock = threading.Lock()
    started = time.monotonic()

    def flood() -> None:
        with httpx.Client(timeout=10) as client:
            for _ in range(100):
                answer = client.post(daemon.url + "/-/reload")
                with lock:
                    statuses[answer.status_code] += 1
                    if answer.status_code == 429:
                        retry_after.add(answer.headers.get("retry-after"))

    threads = [threading.Thread(target=flood) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    assert set(statuses) <= {200, 429}, statuses
    assert statuses[429] >= 300, statuses
    assert 1 <= statuses[200] <= 3 + seconds + 1, (statuses, seconds)
    assert retry_after == {"1"}
    assert daemon.log().count("configuration reloaded") == statuses[200]
    assert len(daemon.log().splitlines()) < 50


# --- basic auth under a flood of wrong passwords ---------------------------------------


class _Closing(BaseHTTPRequestHandler):
    """An OpenAI-style endpoint on HTTP/1.0: every connection closes after its answer, so
    every probe resolves the name and connects anew (pooled connections measure no dns)."""

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, kind: str, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send("application/json", b'{"object": "list", "data": [{"id": "m"}]}')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def chunk(delta: dict[str, str], **extra: object) -> str:
            return "data: " + json.dumps({"id": "c", "object": "chat.completion.chunk",
                                          "model": "m", "choices": [{"index": 0, "delta": delta,
                                          "finish_reason": extra.pop("finish", None)}],
                                          **extra}) + "\n\n"

        self._send("text/event-stream", (
            chunk({"role": "assistant", "content": "1, 2,"}) + chunk({"content": " 3"})
            + chunk({}, finish="stop", usage={"prompt_tokens": 5, "completion_tokens": 3,
                                              "total_tokens": 8})
            + "data: [DONE]\n\n").encode())


@pytest.fixture
def closing_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Closing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}/v1"  # a name: the probe resolves it
    server.shutdown()
    server.server_close()


def test_wrong_password_flood_leaves_probe_dns_alone(
        tmp_path: Path, closing_endpoint: str, start_daemon: Callable[..., Daemon],
        write_config: Callable[..., Path]) -> None:
    """16 clients for 3 s of wrong passwords, each new (no cache helps), against a cost-10 hash:
    bcrypt runs in its own single thread, so the probes' name lookups (asyncio's default
    executor) wait for nothing: llmmon's own dns phase stays under 50 ms. Before, 16 bcrypts
    ran in that executor at once: dns ~500 ms, e2e with it."""
    web = _web(tmp_path, b"right-password", rounds=10)
    path = write_config({"probe_history": 50, "web_config_file": str(web), "endpoints": [{
        "name": "e", "provider": "openai", "url": closing_endpoint, "model": "m",
        "interval": "1s", "timeout": "5s"}]})
    daemon = start_daemon("-c", str(path))
    good = ("prom", "right-password")

    def history() -> list[dict[str, Any]]:
        answer = httpx.get(daemon.url + "/probes", params={"endpoint": "e", "format": "json"},
                           auth=good, timeout=30)
        probes: list[dict[str, Any]] = answer.json()["probes"]
        return probes

    wait_for(lambda: any(p["seconds"].get("dns") for p in history()), 20, "a probe's dns")
    before = {json.dumps(p, sort_keys=True) for p in history()}
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    stop = time.monotonic() + 3

    def flood() -> None:
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < stop:
                answer = client.get(daemon.url + "/metrics",
                                    auth=("prom", secrets.token_hex(8)))
                with lock:
                    statuses[answer.status_code] += 1

    threads = [threading.Thread(target=flood) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    during = [p for p in history() if json.dumps(p, sort_keys=True) not in before]
    assert set(statuses) == {401}
    assert statuses[401] >= 16  # the flood did reach bcrypt
    dns = [p["seconds"]["dns"] for p in during if p["seconds"].get("dns") is not None]
    assert len(dns) >= 2, during
    assert max(dns) < 0.05, dns
    assert all(p["outcome"] == "success" for p in during)


def test_the_same_wrong_password_costs_one_bcrypt(
        tmp_path: Path, start_daemon: Callable[..., Daemon],
        write_config: Callable[..., Path]) -> None:
    """200 requests with the same wrong password, and 200 as a user that does not exist, cost
    about one bcrypt each (cost 11: ~0.15 s of CPU; 400 of them would be a minute)."""
    web = _web(tmp_path, b"right-password", rounds=11)
    daemon = start_daemon("-c", str(_config(write_config, web_config_file=str(web))))
    before = _cpu_seconds(daemon.proc.pid)
    started = time.monotonic()

    def ask(user: str, password: str) -> list[int]:
        with httpx.Client(timeout=30) as client:
            return [client.get(daemon.url + "/metrics", auth=(user, password)).status_code
                    for _ in range(25)]

    answers: list[int] = []
    threads = [threading.Thread(target=lambda u=user: answers.extend(ask(u, "wrong")))
               for user in ["prom"] * 8 + ["nobody"] * 8]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu, wall = _cpu_seconds(daemon.proc.pid) - before, time.monotonic() - started
    assert answers == [401] * 400
    assert cpu < 4.0, cpu  # generous: 400 bcrypts at cost 11 are ~60 s
    assert wall < 20, wall
    ok = httpx.get(daemon.url + "/metrics", auth=("prom", "right-password"), timeout=30)
    assert ok.status_code == 200  # a cached failure is not mistaken for the right password


async def test_unknown_user_costs_as_much_as_a_wrong_password() -> None:
    """A name that is not configured is checked against a hash of the configured cost (12
    here), so timing does not tell users apart; before, its dummy hash was always cost 10."""
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=12)).decode()
    security = WebSecurity(WebConfig(basic_auth_users={"prom": hashed}))

    async def seconds(user: str) -> float:
        fastest = float("inf")
        for _ in range(2):
            header = "Basic " + base64.b64encode(
                f"{user}:{secrets.token_hex(8)}".encode()).decode()
            started = time.perf_counter()
            assert not await security.authorized(header)
            fastest = min(fastest, time.perf_counter() - started)
        return fastest

    known, unknown = await seconds("prom"), await seconds("nobody")
    assert 0.5 < unknown / known < 2, (known, unknown)


class _Recording(ThreadPoolExecutor):
    """A default executor that notes what runs in it."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.ran: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.ran.append(getattr(fn, "__qualname__", repr(fn)))
        return super().submit(fn, *args, **kwargs)


async def test_nothing_a_client_asks_for_runs_in_the_default_executor(tmp_path: Path) -> None:
    """asyncio's default executor is where the probes resolve names: passwords (right, wrong,
    unknown users), scrapes, pages and reloads never queue there."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"web_config_file": str(_web(tmp_path, b"pw"))}))
    runtime = Runtime(load_settings(config), lambda: load_settings(config), lifecycle=True)
    port = await runtime.exporter.start("127.0.0.1", 0, None)
    recording = _Recording()
    asyncio.get_running_loop().set_default_executor(recording)
    url = f"http://127.0.0.1:{port}"

    def client() -> list[int]:
        with httpx.Client(timeout=10) as http:
            return [http.request(method, url + path, auth=auth).status_code
                    for method, path, auth in [
                        ("GET", "/metrics", ("prom", "wrong")),
                        ("GET", "/metrics", ("nobody", "pw")),
                        ("GET", "/metrics", ("prom", "pw")),
                        ("GET", "/", ("prom", "pw")),
                        ("GET", "/probes?endpoint=x", ("prom", "pw")),
                        ("POST", "/-/reload", ("prom", "pw")),
                        ("GET", "/healthz", None)]]

    with ThreadPoolExecutor(1) as own:
        statuses = await asyncio.get_running_loop().run_in_executor(own, client)
    await runtime.shutdown()
    assert statuses == [401, 401, 200, 200, 404, 200, 200]
    assert recording.ran == []
