"""The fault matrix over real loopback sockets: every misbehaviour ends as a counted, bounded
reason, and nothing is left behind (sockets, tasks, threads, secrets)."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import json
import os
import random
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler
from http.server import HTTPServer as StdHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmmon.config import ConfigError
from llmmon.config.settings import load_settings
from llmmon.daemon.httpserver import Request, Response, text
from llmmon.probe.result import MAX_RETRY_AFTER, retry_after
from llmmon.probe.run import run_probe
from llmmon.probe.transport import make_client
from tests.conftest import (
    COUNT,
    Daemon,
    SimProcess,
    SimServer,
    make_endpoint,
    probe,
    sample,
    wait_for,
    wait_for_async,
)

SECRET = "sk-llmmon-fault-PLANTED-6b1f0c2d9e8a7"


async def test_gzip_bomb_stops_at_the_cap_on_decoded_bytes(serve: Any) -> None:
    """10 MB of JSON in 10 kB of gzip: reading stops at the cap, it is never inflated whole."""
    bomb = gzip.compress(b'{"choices": [{"message": {"content": "' + b"a" * 10_000_000 + b'"}}]}')
    assert len(bomb) < 50_000

    async def handler(request: Request) -> Response:
        return Response(200, bomb, {"Content-Type": "application/json",
                                    "Content-Encoding": "gzip"})

    result = await probe(await serve(handler), stream=False, max_response_bytes=1 << 20)
    assert result.error == "too_large"


async def test_gzip_stream_from_a_server_that_ignores_identity(serve: Any) -> None:
    """A compressed stream is decoded (and timed) like a plain one."""
    events = b"".join(b'data: {"choices":[{"delta":{"content":"%d"}}]}\n\n' % i for i in range(5))
    body = gzip.compress(events + b"data: [DONE]\n\n")

    async def handler(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(body), 16):
                yield body[i : i + 16]

        return Response(200, headers={"Content-Type": "text/event-stream",
                                      "Content-Encoding": "gzip"}, stream=chunks())

    result = await probe(await serve(handler))
    assert result.ok, result.error
    assert result.text == "01234"


async def test_slow_drip_hits_the_total_deadline(serve: Any) -> None:
    """One byte every 300 ms never trips a per-read timeout; the 1 s total deadline does."""
    async def handler(request: Request) -> Response:
        async def drip() -> AsyncIterator[bytes]:
            for byte in b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n' * 10:
                yield bytes([byte])
                await asyncio.sleep(0.3)

        return Response(200, headers={"Content-Type": "text/event-stream"}, stream=drip())

    started = time.monotonic()
    result = await probe(await serve(handler), timeout="1s")
    assert result.error == "timeout"
    assert time.monotonic() - started < 1.8


@pytest.mark.parametrize("content_type", ["text/event-stream", ""])
async def test_empty_200_is_a_protocol_error(serve: Any, content_type: str) -> None:
    """A 200 with no body at all is not a successful probe."""
    async def handler(request: Request) -> Response:
        return Response(200, b"", {"Content-Type": content_type} if content_type else {})

    result = await probe(await serve(handler))
    assert (result.error, result.status) == ("protocol", 200)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("30", 30.0), ("0", 0.0), ("-5", 0.0), ("1e9", MAX_RETRY_AFTER), ("soon", None),
     ("", None), ("nan", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_forms(header: str, expected: float | None) -> None:
    """Seconds, garbage, huge values and past dates: capped, clamped or ignored."""
    assert retry_after(header) == expected


def test_retry_after_http_date_in_the_future() -> None:
    """An HTTP date is turned into seconds from now."""
    now = time.time()
    header = email.utils.formatdate(now + 120, usegmt=True)
    assert retry_after(header, now=now) == pytest.approx(120, abs=1)


async def test_429_with_http_date_over_a_socket(serve: Any) -> None:
    """Retry-After as an HTTP date arrives in the result."""
    async def handler(request: Request) -> Response:
        when = email.utils.formatdate(time.time() + 60, usegmt=True)
        return text(429, "slow down", **{"Retry-After": when})

    result = await probe(await serve(handler))
    assert result.error == "rate_limited"
    assert 55 <= result.retry_after <= 61


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.sim(ttft=0.002, itl=0.001)
async def test_cancelled_probes_leave_nothing_behind(sim: SimServer) -> None:
    """1,000 probes cancelled at random points mid-stream: no socket or task is left."""
    ep = make_endpoint(sim.url())
    fds, tasks = open_fds(), len(asyncio.all_tasks())
    rng = random.Random(7)
    deadline = time.monotonic() + 60
    async with make_client(ep) as client:
        for _ in range(1000):
            task = asyncio.create_task(run_probe(client, ep, COUNT))
            await asyncio.sleep(rng.uniform(0, 0.01))
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert time.monotonic() < deadline, "bounded in time"
        pool = client._transport.pool  # type: ignore[attr-defined]
        assert len(pool.connections) <= 4
    await sim.close()
    await wait_for_async(lambda: open_fds() <= fds and len(asyncio.all_tasks()) <= tasks, 5,
                         "the closed connections' sockets and tasks to be gone")
    assert open_fds() <= fds
    assert len(asyncio.all_tasks()) <= tasks


class EchoKeyServer:
    """A server that answers 401 and echoes the Authorization header back, as some do."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                echo = f"invalid key: {self.headers.get('Authorization')}".encode()
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Echo", echo.decode())
                self.send_header("Content-Length", str(len(echo)))
                self.end_headers()
                self.wfile.write(echo)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = StdHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def echo_server() -> Iterator[EchoKeyServer]:
    server = EchoKeyServer()
    yield server
    server.server.shutdown()


def test_key_echoed_by_the_server_goes_nowhere(
    start_daemon: Callable[..., Daemon], echo_server: EchoKeyServer,
    write_config: Callable[..., Path],
) -> None:
    """Even when the server echoes the key in its error, with debug logging on, the key
    appears in no log line, metric or page."""
    path = write_config({"log_level": "debug", "endpoints": [{
        "name": "echo", "provider": "openai", "model": "m", "interval": "1s",
        "url": f"http://127.0.0.1:{echo_server.port}/v1", "api_key_env": "ECHO_KEY"}]})
    daemon = start_daemon("-c", str(path), env={"ECHO_KEY": SECRET})
    wait_for(lambda: (sample(daemon.metrics(), "llmmon_probe_errors_total", llm_endpoint="echo",
                             reason="http_4xx") or 0) >= 2, 20, "two rejected probes")
    seen = daemon.metrics() + daemon.get("/").text
    daemon.stop()
    assert SECRET not in seen + daemon.log()


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def test_parallel_scrapes_and_a_slow_reader(start_daemon: Callable[..., Daemon],
                                            simulator_process: SimProcess,
                                            write_config: Callable[..., Path]) -> None:
    """50 parallel scrapes are all answered while a client trickles one byte at a time, and
    the daemon's threads stay bounded."""
    config = write_config({"endpoints": [{"name": "sim", "provider": "openai", "model": "m",
                                          "url": simulator_process.base, "interval": "1s"}]})
    daemon = start_daemon("-c", str(config))
    # The daemon's thread pools (rendering, samplers, asyncio's default executor, which
    # resolves the probes' host names) start their threads on first use. Counted before
    # that, their start-up would be charged to the scrapes, so the count waits for a probe
    # and the samplers; there is no load probe here, whose burst would start more.
    ran = [("llmmon_probe_success", {"llm_endpoint": "sim"}),
           *(("llmmon_sampler_success", {"sampler": s}) for s in ("host", "gpu"))]

    def warmed_up() -> bool:
        text = daemon.metrics()
        return all(sample(text, name, **labels) is not None for name, labels in ran)

    wait_for(warmed_up, 30, "a probe and the samplers to have run")
    slow = socket.create_connection(("127.0.0.1", daemon.port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    slow.recv(1)
    threads_before = _threads(daemon.proc.pid)
    results: list[int] = []
    counts: list[int] = []  # the daemon's threads, watched while the scrapes run
    done = threading.Event()

    def scrape() -> None:
        results.append(httpx.get(daemon.url + "/metrics", timeout=20).status_code)

    def watch() -> None:
        while not done.is_set():
            counts.append(_threads(daemon.proc.pid))
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    workers = [threading.Thread(target=scrape) for _ in range(50)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    done.set()
    watcher.join(5)
    counts.append(_threads(daemon.proc.pid))
    assert results == [200] * 50
    assert max(counts) <= threads_before + 2, counts  # no thread per scrape, even briefly
    assert _threads(daemon.proc.pid) <= threads_before + 2
    slow.close()
    assert daemon.get("/healthz").status_code == 200


KEYS = ["listen", "log_level", "defaults", "endpoints", "samplers", "name", "provider", "url",
        "model", "interval", "timeout", "prompts", "text", "expect", "host", "gpu", "process",
        "targets", "cmdline", "enabled", "stream", "max_tokens", "api_key_env", "pricing"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6),
                    st.floats(allow_nan=True), st.text(max_size=12),
                    st.sampled_from(["openai", "30s", "http://127.0.0.1:1/v1", "auto", "x"]))
DOCS = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=5)),
    max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(DOCS)
def test_any_yaml_gives_a_config_or_a_clear_error(tmp_path_factory: Any, doc: Any) -> None:
    """Whatever the file holds, loading it ends in Settings or a ConfigError, never a
    traceback; every problem line names a place."""
    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML, and keeps every generated value
    problems = _problems(path)
    assert all(": " in problem for problem in problems)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_as_config_file(tmp_path_factory: Any, data: bytes) -> None:
    """Random bytes, invalid UTF-8 and broken YAML included, give a ConfigError or Settings."""
    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_bytes(data)
    _problems(path)


def _problems(path: Path) -> list[str]:
    """A ConfigError's problems (never empty), or [] for a valid config; any other
    exception fails the test."""
    try:
        load_settings(path)
    except ConfigError as exc:
        problems = exc.problems
        assert problems
        return problems
    return []
