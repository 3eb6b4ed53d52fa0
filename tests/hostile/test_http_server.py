"""The HTTP server against hostile clients, over real loopback sockets: crowds of idle, silent,
dripping (slowloris) and TLS-silent connections must not keep legitimate scrapes out, and
malformed requests get a 4xx/5xx or a close, never a 200 (Go's net/http is the reference).

The crowds run in a subprocess (so they do not share the server's event loop), from several
loopback addresses (127.0.0.2 and up: Linux routes all of 127/8 to lo) and reconnect, half a
second later, whenever the server closes one of theirs, as a holding attacker would; the
server runs on an event loop in a thread of the test process; the legitimate client uses
blocking sockets from the test itself, a fresh connection each request.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import select
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from llmmon.daemon import http11
from llmmon.daemon.httpserver import HTTPServer, Request, Response, text

CROWD = 500  # hostile connections held, when the descriptor limit allows (see _crowd_size)
SCRAPES = 20


async def _handler(request: Request) -> Response:
    if request.path == "/metrics":
        return text(200, "ok\n")
    if request.path == "/echo":
        return text(200, f"{request.method} {len(request.body)} {request.query}\n")
    if request.path == "/stream":
        async def pieces() -> AsyncIterator[bytes]:
            for piece in (b"one ", b"", b"two\n"):
                yield piece
        return Response(200, stream=pieces(), before_write=bytes.upper)
    return text(404, "not found\n")


class Served:
    """An HTTPServer on an event loop of its own, in a thread."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None, **kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = self.call(self._make(kwargs))
        self.port: int = self.call(self.server.start("127.0.0.1", 0, ssl_context))

    async def _make(self, kwargs: dict[str, Any]) -> HTTPServer:
        self.gate = asyncio.Event()  # /hold answers once it is set
        return HTTPServer(self._handle, **kwargs)

    async def _handle(self, request: Request) -> Response:
        if request.path == "/hold":
            await self.gate.wait()
        return await _handler(request)

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        self.call(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def served() -> Iterator[Served]:
    server = Served()
    yield server
    server.close()


def scrape(port: int, ctx: ssl.SSLContext | None = None) -> tuple[int | None, float]:
    """One GET /metrics on a fresh connection: its status (None: no answer) and seconds."""
    start = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), 2.0))
            if ctx:
                sock = stack.enter_context(ctx.wrap_socket(sock, server_hostname="localhost"))
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = b""
            while not data.endswith(b"\r\n\r\nok\n") and (chunk := sock.recv(4096)):
                data += chunk
    except OSError:
        return None, time.monotonic() - start
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None
    return status, time.monotonic() - start


def exchange(port: int, raw: bytes, timeout: float = 1.0) -> tuple[bytes, bool]:
    """Send ``raw``, read until the server closes or ``timeout``: (what came, closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        data, deadline = b"", time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                return data, True
            if not chunk:
                return data, True
            data += chunk
        return data, False


def _crowd_size() -> int:
    """CROWD, or as many as the hard descriptor limit allows the attacker process (which
    raises its own soft limit); the server side holds at most its cap of 64."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return CROWD if hard == resource.RLIM_INFINITY else max(50, min(CROWD, hard - 100))


ATTACKER = textwrap.dedent("""
    import asyncio, resource, sys
    port, mode, count, spread = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    pause = float(sys.argv[5])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = count + 100 if hard == resource.RLIM_INFINITY else min(hard, count + 100)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    opened = 0

    async def hold(i):
        global opened
        source = (f"127.0.0.{2 + i % spread}" if spread > 1 else "127.0.0.1", 0)
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                               local_addr=source)
            except OSError:
                await asyncio.sleep(0.5)
                continue
            opened += 1
            try:
                if mode == "drip":  # a head that never ends, a byte every half second
                    writer.write(b"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nX-Drip: ")
                while True:
                    try:
                        if not await asyncio.wait_for(reader.read(4096), 0.5):
                            break  # the server closed it
                    except asyncio.TimeoutError:
                        if mode == "drip":
                            writer.write(b"a")
            except OSError:
                pass
            writer.close()
            await asyncio.sleep(pause)  # then hold a new one

    async def main():
        tasks = [asyncio.create_task(hold(i)) for i in range(count)]
        while opened < count:
            await asyncio.sleep(0.05)
        print("ready", flush=True)
        await asyncio.gather(*tasks)

    asyncio.run(main())
""")


@contextlib.contextmanager
def crowd(port: int, mode: str, spread: int = 50, pause: float = 0.5) -> Iterator[int]:
    """``_crowd_size()`` connections held against ``port``: "idle" (connect, send nothing:
    also a TLS connection that never sends its ClientHello) or "drip" (slowloris), each
    replaced ``pause`` seconds after the server closes it."""
    count = _crowd_size()
    with subprocess.Popen([sys.executable, "-c", ATTACKER, str(port), mode, str(count),
                           str(spread), str(pause)], stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            assert ready, "the crowd never formed"
            assert proc.stdout.readline().strip() == "ready"
            yield count
        finally:
            proc.kill()


def _wait_full(served: Served, at_least: int) -> None:
    deadline = time.monotonic() + 10
    while len(served.server._conns) < at_least:
        assert time.monotonic() < deadline, "the crowd never filled the server"
        time.sleep(0.02)


def _scrapes(port: int, ctx: ssl.SSLContext | None = None) -> list[tuple[int | None, float]]:
    results = [scrape(port, ctx) for _ in range(SCRAPES)]
    print("scrapes:", sum(s == 200 and t <= 1.0 for s, t in results), "of", SCRAPES,
          f"ok; slowest {max(t for _, t in results):.3f} s")
    return results


def _assert_served(results: list[tuple[int | None, float]]) -> None:
    good = [t for status, t in results if status == 200 and t <= 1.0]
    assert len(good) >= 0.95 * len(results), results


@pytest.mark.parametrize(("mode", "spread"), [("idle", 50), ("idle", 1), ("drip", 50)],
                         ids=["idle", "idle-one-address", "slowloris"])
def test_a_crowd_does_not_keep_scrapes_out(served: Served, mode: str, spread: int) -> None:
    with crowd(served.port, mode, spread):
        _wait_full(served, 32 if spread == 1 else 64)  # one address holds at most half
        _assert_served(_scrapes(served.port))


def test_tls_connections_that_never_say_hello_do_not_keep_scrapes_out() -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    served = Served(server_ctx)
    try:
        with crowd(served.port, "idle"):
            _wait_full(served, 64)  # handshakes count toward the cap
            _assert_served(_scrapes(served.port, client_ctx))
    finally:
        served.close()


def test_the_longest_waiting_connection_makes_room_and_busy_ones_are_kept() -> None:
    served = Served(max_connections=8)
    try:
        socks = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(8)]
        _wait_full(served, 8)
        newest = socket.create_connection(("127.0.0.1", served.port))  # evicts socks[0]
        socks[0].settimeout(1.0)
        assert socks[0].recv(100) == b""
        newest.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        newest.settimeout(1.0)
        assert newest.recv(100).startswith(b"HTTP/1.1 200")
        for sock in [*socks, newest]:
            sock.close()
    finally:
        served.close()


def test_when_every_connection_is_busy_a_newcomer_is_refused_and_the_busy_ones_finish(
        ) -> None:
    served = Served(max_connections=8)
    try:
        busy = [socket.create_connection(("127.0.0.1", served.port), timeout=2.0)
                for _ in range(8)]
        for sock in busy:
            sock.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 5
        while len(served.server._conns) < 8 or served.server._waiting:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        data, closed = exchange(served.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert closed
        assert data.startswith(b"HTTP/1.1 503 ")
        served.loop.call_soon_threadsafe(served.gate.set)
        for sock in busy:
            assert sock.recv(1000).startswith(b"HTTP/1.1 404 ")  # /hold is no real route
            sock.close()
    finally:
        served.close()


MALFORMED = {
    "differing Content-Length": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                                b"Content-Length: 4\r\n\r\nabcd",
    "Content-Length +3": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
    "Content-Length 1_0": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1_0\r\n\r\n"
                          b"0123456789",
    "no Host": b"GET /metrics HTTP/1.1\r\n\r\n",
    "two Hosts": b"GET /metrics HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    "HTTP/1.99": b"GET /metrics HTTP/1.99\r\nHost: x\r\n\r\n",
    "HTTP/2.0": b"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n",
    "space in a header name": b"GET /metrics HTTP/1.1\r\nHost: x\r\nX Y: 1\r\n\r\n",
    "space before the colon": b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Y : 1\r\n\r\n",
    "NUL in a header value": b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Y: a\x00b\r\n\r\n",
    "space in the target": b"GET /me trics HTTP/1.1\r\nHost: x\r\n\r\n",
    "no version": b"GET /metrics\r\nHost: x\r\n\r\n",
    "TE and CL": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "TE gzip": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    "bad chunk size": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"zz\r\n",
    "head over 16 KiB": b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: " + b"a" * (17 << 10),
    "body over 1 MiB": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",
    "malformed target": b"GET http://[::1/ HTTP/1.1\r\nHost: x\r\n\r\n",
    "too many parameters": b"GET /echo?" + b"&".join(b"a%d=1" % i for i in range(30))
                           + b" HTTP/1.1\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_requests_are_refused(served: Served, raw: bytes) -> None:
    data, closed = exchange(served.port, raw)
    assert closed, "the connection must close after a refusal"
    assert not data.startswith(b"HTTP/1.1 2"), data
    if data:
        assert int(data.split(b" ", 2)[1]) >= 400, data


@pytest.mark.parametrize("raw", [
    b"GET /metrics HTTP/1.0\r\n\r\n",
    b"GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",  # h11 keeps no 1.0 alive
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close, TE\r\nTE: trailers\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: TE,close\r\nTE: trailers\r\n\r\n",
], ids=["HTTP/1.0", "HTTP/1.0 keep-alive", "close, TE", "TE,close"])
def test_the_connection_closes_right_after_the_response_when_asked(
        served: Served, raw: bytes) -> None:
    data, closed = exchange(served.port, raw)
    assert closed
    assert data.split(b"\r\n", 1)[0].endswith(b"200 OK")
    assert data.endswith(b"ok\n")


def test_bare_line_feeds_are_answered_at_once(served: Served) -> None:
    data, closed = exchange(served.port, b"GET /metrics HTTP/1.1\nHost: x\nConnection: close\n\n")
    assert closed
    assert data.startswith(b"HTTP/1.1 200")
    assert data.endswith(b"ok\n")


def test_keep_alive_pipelining_head_chunked_and_continue(served: Served) -> None:
    raw = (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
           b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
           b"POST /echo?a=1&a=2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
           b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
           b"Connection: close\r\n\r\nhi")
    data, closed = exchange(served.port, raw)
    assert closed
    assert data.count(b"HTTP/1.1 200 OK") == 4
    assert data.count(b"ok\n") == 1  # none after HEAD
    assert b"POST 5 {'a': '1'}\n" in data
    assert data.endswith(b"POST 2 {}\n")
    with socket.create_connection(("127.0.0.1", served.port), timeout=1.0) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"hi")
        data = b""
        while not data.endswith(b"POST 2 {}\n") and (chunk := sock.recv(1000)):
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK")
        assert data.endswith(b"\r\n\r\nPOST 2 {}\n")


@pytest.mark.parametrize(("version", "body"), [
    (b"1.1", b"4\r\nONE \r\n4\r\nTWO\n\r\n0\r\n\r\n"),  # chunked
    (b"1.0", b"ONE TWO\n"),  # delimited by the close
])
def test_streamed_responses_are_framed_for_the_client(
        served: Served, version: bytes, body: bytes) -> None:
    data, closed = exchange(served.port, b"GET /stream HTTP/%s\r\nHost: x\r\n"
                            b"Connection: close\r\n\r\n" % version)
    assert closed
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.split(b"\r\n\r\n", 1)[1] == body


def test_idle_and_dripping_connections_are_closed_in_time(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http11, "IDLE_TIMEOUT", 0.3)
    monkeypatch.setattr(http11, "HEAD_TIMEOUT", 0.6)
    with socket.create_connection(("127.0.0.1", served.port), timeout=2.0) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        start = time.monotonic()
        data = b""
        while chunk := sock.recv(1000):
            data += chunk
        assert data.endswith(b"ok\n")
        assert 0.2 < time.monotonic() - start < 1.0
    with socket.create_connection(("127.0.0.1", served.port), timeout=2.0) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /metrics HTTP/1.1\r\n")
        with contextlib.suppress(OSError):
            while time.monotonic() - start < 2.0:  # a byte every 50 ms does not extend it
                sock.sendall(b"X")
                readable, _, _ = select.select([sock], [], [], 0.05)
                if readable and not sock.recv(100):
                    break
        assert 0.5 < time.monotonic() - start < 1.0


FD_STARVED_SERVER = textwrap.dedent("""
    import asyncio, logging, os, resource
    from llmmon.daemon.httpserver import HTTPServer, text
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, hard))
    hog = []  # the rest of the process took all but a few descriptors
    try:
        while True:
            hog.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        for fd in hog[:12]:
            os.close(fd)

    async def handler(request):
        return text(200, "ok\\n")

    async def main():
        server = HTTPServer(handler)
        print(await server.start("127.0.0.1", 0), flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
""")


def test_out_of_descriptors_the_server_keeps_serving_and_says_so_once() -> None:
    """Row 3's end state: accept fails with EMFILE. The server drops its longest-waiting
    connections to make room, keeps answering scrapes, and logs one line, not one per try."""
    with subprocess.Popen([sys.executable, "-c", FD_STARVED_SERVER], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        errors = _serve_starved(proc)
    warnings = [line for line in errors.splitlines() if line.startswith("WARNING")]
    assert any("cannot accept" in line for line in warnings), errors[-2000:]
    assert len(warnings) <= 2, warnings


def _serve_starved(proc: subprocess.Popen[str]) -> str:
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the server did not start"
        port = int(proc.stdout.readline())
        with crowd(port, "idle"):
            _assert_served(_scrapes(port))
    finally:
        proc.terminate()
        _, errors = proc.communicate(timeout=10)
    return errors
