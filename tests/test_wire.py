"""The load probe's own connections (``probe/wire.py``), over real sockets: a request sent
before its probe runs, a stream's connection kept or made again, bodies h11 reads, TLS, and
the first requests of a burst asked at one instant."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trustme

from llmmon.config import LoadConfig, Prompt
from llmmon.probe.load import Burst, burst, load_clients
from llmmon.probe.run import prepare, run_probe
from llmmon.probe.tls import TLSStream
from llmmon.probe.wire import Encoded, WireTransport, wire_client
from tests.conftest import SimServer, make_endpoint, wait_for_async

PROMPT = Prompt(name="p", text="hi", max_tokens=4)
pytestmark = pytest.mark.sim(ttft=0.02, itl=0.002)


def _sse(close: bool) -> bytes:
    chunk = json.dumps({"model": "m", "choices": [{"delta": {"content": "hello"}}]})
    body = f"data: {chunk}\n\ndata: [DONE]\n\n".encode()
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            + (b"Connection: close\r\n" if close else b"")
            + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))


ERROR = json.dumps({"error": {"message": "the model is overloaded"}}).encode()
ANSWERS = {"sse": _sse(False), "sse_close": _sse(True),
           "error": b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(ERROR), ERROR)}


class Scripted:
    """Answers every request with one canned answer; counts connections and requests."""

    def __init__(self, answer: str) -> None:
        self.answer, self.connections, self.requests = ANSWERS[answer], 0, 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                await reader.readexactly(length)
                self.requests += 1
                writer.write(self.answer)
                await writer.drain()
                if b"Connection: close" in self.answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


@pytest.fixture
async def scripted(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, Scripted]]:
    server = Scripted(request.param)
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    async with srv:
        yield f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/v1", server


async def run_burst(url: str, **settings: Any) -> Burst:
    """A load burst against ``url``; ``settings`` are the endpoint's, ``load`` among them."""
    ep = make_endpoint(url, **settings)
    assert ep.load is not None
    clients = load_clients(ep, ep.load)
    try:
        return await burst(clients, ep, ep.load)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


@pytest.mark.parametrize("scripted", ["sse"], indirect=True)
async def test_a_fired_request_is_sent_before_its_probe_runs(
        scripted: tuple[str, Scripted]) -> None:
    url, server = scripted
    ep = make_endpoint(url)
    client = wire_client(ep, None)
    transport = client.stamping
    assert isinstance(transport, WireTransport)
    try:
        await transport.connect()
        prepared = prepare(client, ep, PROMPT)
        assert prepared is not None
        assert transport.fire(Encoded(prepared.request))
        called = time.monotonic_ns()
        result = await run_probe(client, ep, PROMPT, prepared=prepared)
    finally:
        await client.aclose()
    assert result.ok, (result.error, result.detail)
    assert result.text == "hello"
    assert result.sent_ns is not None
    assert result.sent_ns < called  # sent by fire(), once
    assert (server.connections, server.requests) == (1, 1)
    assert result.phases["connect"] == 0.0  # made before the clock: not this probe's


@pytest.mark.parametrize(("scripted", "connections"), [("sse", 1), ("sse_close", 3)],
                         indirect=["scripted"])
async def test_a_streams_connection_is_kept_or_made_again(
        scripted: tuple[str, Scripted], connections: int) -> None:
    """Three requests on one stream: one connection while the server keeps it, a new one
    for each after a server that closes it."""
    url, server = scripted
    out = await run_burst(url, load={"concurrency": 1, "requests": 3})
    assert [r.error for r in out.results] == [None] * 3
    assert (server.connections, server.requests) == (connections, 3)


@pytest.mark.parametrize("scripted", ["error"], indirect=True)
async def test_an_error_status_is_read_through_h11_and_the_connection_kept(
        scripted: tuple[str, Scripted]) -> None:
    url, server = scripted
    out = await run_burst(url, load={"concurrency": 1, "requests": 2})
    assert [r.error for r in out.results] == ["http_5xx", "http_5xx"]
    assert all("the model is overloaded" in (r.detail or "") for r in out.results)
    assert (server.connections, server.requests) == (1, 2)


async def test_the_first_requests_are_asked_at_one_instant(sim: SimServer) -> None:
    """A burst's first wave is asked together, when the clock starts; each later request
    when its stream's previous one ended. All succeed against the simulator."""
    out = await run_burst(sim.url(), load={"concurrency": 4, "requests": 10})
    assert all(r.ok for r in out.results), [r.error for r in out.results]
    asked = sorted(a for a, _ in out.waits)
    assert len(asked) == 10
    assert asked.count(asked[0]) == 4  # the first wave: one instant
    assert len(set(asked[4:])) == 6
    assert out.fired == 10  # each by one send when asked, none left for its probe to send
    assert sim.requests == 10


async def test_a_refused_connection_is_a_connect_error(sim: SimServer) -> None:
    port = sim.port
    await sim.close()
    out = await run_burst(f"http://127.0.0.1:{port}/v1", load={"concurrency": 2, "requests": 2})
    assert [r.error for r in out.results] == ["connect", "connect"]
    assert out.fired == 0  # no connection to send on


async def test_a_burst_over_tls(start_sim: object, tmp_path: object) -> None:
    authority = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    sim = await start_sim(ssl_context=context)  # type: ignore[operator]
    ca_path = f"{tmp_path}/ca.pem"
    authority.cert_pem.write_to_path(ca_path)
    ep = make_endpoint(sim.url(), tls_config={"ca_file": ca_path},
                       load={"concurrency": 2, "requests": 4})
    assert ep.load is not None
    clients = load_clients(ep, LoadConfig(concurrency=2, requests=4))
    try:
        out = await burst(clients, ep, ep.load)
        assert isinstance(clients[0].stamping._stream, TLSStream)  # type: ignore[attr-defined]
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    assert all(r.ok for r in out.results), [(r.error, r.detail) for r in out.results]
    assert len(out.results) == 4


async def test_a_send_that_fails_is_sent_again_on_a_new_connection() -> None:
    """The server resets the connection opened before the clock: firing on it fails, the
    probe then sends its request on a new connection, and the broken one is closed."""
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:  # reset: SO_LINGER 0, then close
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        await Scripted("sse").handle(reader, writer)

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with srv:
        ep = make_endpoint(f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/v1")
        client = wire_client(ep, None)
        transport = client.stamping
        assert isinstance(transport, WireTransport)
        try:
            await transport.connect()
            stream = transport._stream
            assert stream is not None
            await wait_for_async(lambda: stream.get_extra_info("is_readable"), 5, "the reset")
            prepared = prepare(client, ep, PROMPT)
            assert prepared is not None
            assert not transport.fire(Encoded(prepared.request))
            result = await run_probe(client, ep, PROMPT, prepared=prepared)
            assert stream.get_extra_info("socket").fileno() == -1  # the broken one closed
        finally:
            await client.aclose()
    assert result.ok, (result.error, result.detail)
    assert connections == 2
