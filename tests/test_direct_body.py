"""A chunked stream read straight from the stamped socket (``probe/streamed.py``), over real
sockets: whatever way the server's writes fall into reads, the answer and its stamps are
the same, and the connection is kept only after a sound end."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

import pytest

from llmmon.config import Prompt
from llmmon.probe.run import run_probe
from llmmon.probe.transport import make_client
from llmmon.providers import get_provider
from llmmon.providers.base import Event
from tests.conftest import make_endpoint, probe_twice

PROMPT = Prompt(name="p", text="hi", max_tokens=4)
HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n")


def event(text: str) -> bytes:
    data = f"data: {json.dumps({'model': 'm', 'choices': [{'delta': {'content': text}}]})}\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data.encode())


END = b"%x\r\ndata: [DONE]\n\n\r\n0\r\n\r\n" % len(b"data: [DONE]\n\n")
# What the server writes for each request: a list of writes, gaps between them.
Script = list[bytes]


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    await reader.readexactly(length)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], asyncio.Future[str]]]:
    """serve(script) -> url of a server answering every request on a connection with the
    script's writes, 20 ms apart; ``connections`` counts the connections it accepted."""
    servers: list[asyncio.Server] = []

    async def start(script: Script) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(1)
            try:
                while True:
                    await _read_request(reader)
                    for i, write in enumerate(script):
                        if i:
                            await asyncio.sleep(0.02)
                        writer.write(write)
                        await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"

    connections: list[int] = []
    start.connections = connections  # type: ignore[attr-defined]
    yield start  # type: ignore[misc]
    for server in servers:
        server.close()


@pytest.mark.parametrize("script", [
    [HEAD, event("a"), event("b"), END],  # every event in its own write
    [HEAD + event("a"), event("b"), END],  # the head and the first event in one segment
    [HEAD[:20], HEAD[20:] + event("a")[:5], event("a")[5:] + event("b"), END],  # cut anywhere
])
async def test_any_write_pattern_gives_the_same_answer_and_keeps_the_connection(
        serve: Callable[[Script], asyncio.Future[str]], script: Script) -> None:
    url = await serve(script)
    first, second = await probe_twice(url, PROMPT, 1)
    for result in (first, second):
        assert result.ok, result.detail
        assert result.text == "ab"
        assert result.content_chunks == 2
        assert result.ttft is not None
        assert result.ttft > 0
        # the two events came in writes 20 ms apart (or the same one)
        assert len(result.itl) == 1
    assert second.phases["connect"] == 0.0  # the connection was handed back to the pool
    assert len(serve.connections) == 1  # type: ignore[attr-defined]


async def test_the_stamp_is_the_read_the_bytes_came_in(
        serve: Callable[[Script], asyncio.Future[str]]) -> None:
    """The first event came with the head: its stamp is that read's, not the later one's
    (it waited in the stream while h11 parsed the head)."""
    url = await serve([HEAD + event("a"), event("b"), END])
    first, _ = await probe_twice(url, PROMPT, 1)
    assert first.itl[0] >= 0.015  # b came 20 ms after a


async def test_bytes_after_the_end_close_the_connection(
        serve: Callable[[Script], asyncio.Future[str]]) -> None:
    url = await serve([HEAD, event("a"), END + b"junk"])
    first, second = await probe_twice(url, PROMPT, 1)
    assert first.ok
    assert first.text == "a"
    assert second.phases["connect"] > 0  # never reused: the next response would be garbled
    assert len(serve.connections) == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize(("script", "detail"), [
    ([HEAD, event("a")[:-2] + b"XX"], "malformed chunk footer"),
    ([HEAD, b"zz\r\n"], "illegal chunk header"),
])
async def test_a_broken_coding_is_a_protocol_error(
        serve: Callable[[Script], asyncio.Future[str]], script: Script, detail: str) -> None:
    url = await serve(script)
    first, _ = await probe_twice(url, PROMPT, 1)
    assert first.error == "protocol"
    assert first.detail == detail


async def test_a_stream_cut_short_is_a_protocol_error() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(HEAD + event("a"))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    async with server:
        endpoint = make_endpoint(url)
        async with make_client(endpoint, 1) as client:
            result = await run_probe(client, endpoint, PROMPT)
    assert result.error == "protocol"
    assert result.detail is not None
    assert "incomplete chunked read" in result.detail


async def test_e2e_ends_at_the_last_bytes_stamp_not_after_the_work_on_it(
        serve: Callable[[Script], asyncio.Future[str]]) -> None:
    """Work after the last byte came (here a slow finish) is the client's, not the
    server's: E2E stops at the last byte's receive stamp."""
    url = await serve([HEAD, event("a"), event("b"), END])
    endpoint = make_endpoint(url, cache_bust=False)

    class SlowFinish:
        def __init__(self) -> None:
            self.inner = get_provider(endpoint).stream_decoder(endpoint)

        def feed(self, chunk: bytes) -> list[Event]:
            return self.inner.feed(chunk)

        def finish(self) -> None:
            time.sleep(0.1)  # the loop blocked: as a busy client would be
            self.inner.finish()

    async with make_client(endpoint, 1) as client:
        began = time.monotonic()
        result = await run_probe(client, endpoint, PROMPT, decoder=SlowFinish())
        outside = time.monotonic() - began
    assert result.ok
    assert result.ended_ns is not None
    assert result.e2e is not None
    assert result.e2e < outside - 0.09
    assert result.e2e > 0.04  # the two events' 20 ms gaps are in it


async def test_no_cookie_travels_from_one_probe_to_the_next() -> None:
    """Each probe asks as a new user would: a cookie the server set is not sent back."""
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                heads.append(head.lower())
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                await reader.readexactly(length)
                writer.write(HEAD.replace(b"\r\n\r\n", b"\r\nSet-Cookie: session=abc\r\n\r\n")
                             + event("a") + END)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        first, second = await probe_twice(
            f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1", PROMPT, 1)
    assert first.ok
    assert second.ok
    assert len(heads) == 2
    assert not any(b"cookie:" in head for head in heads)


async def test_e2e_begins_at_the_requests_first_byte_on_a_kept_connection(
        serve: Callable[[Script], asyncio.Future[str]]) -> None:
    """On a reused connection E2E starts at the request's first byte (not at the previous
    request's), on a new one at the connect: never before the probe handed it over."""
    url = await serve([HEAD, event("a"), END])
    endpoint = make_endpoint(url, cache_bust=False)
    async with make_client(endpoint, 1) as client:
        first = await run_probe(client, endpoint, PROMPT)
        before = time.monotonic_ns()
        second = await run_probe(client, endpoint, PROMPT)
        after = time.monotonic_ns()
    assert first.ok
    assert second.ended_ns is not None
    assert second.e2e is not None
    began = second.ended_ns - second.e2e * 1e9
    assert before <= began + 1000  # (float rounding)
    assert began <= (second.sent_ns or after)
    assert second.phases["connect"] == 0.0


async def test_e2e_counts_a_new_connections_setup_not_the_clients_wait_after_it(
        serve: Callable[[Script], asyncio.Future[str]], monkeypatch: pytest.MonkeyPatch
        ) -> None:
    """A probe that opens its connection counts the connect's own span in its E2E; the
    client busy elsewhere between the connect and the request's first byte (here 100 ms,
    the loop blocked) is not the server's time."""
    from llmmon.probe.trace import Trace

    record = Trace.__call__

    async def busy_after_connect(self: Trace, name: str, info: dict[str, object]) -> None:
        await record(self, name, info)
        if name == "connection.connect_tcp.complete":
            held = time.monotonic() + 0.1  # the loop held, as by other streams' work
            while time.monotonic() < held:
                pass

    monkeypatch.setattr(Trace, "__call__", busy_after_connect)
    url = await serve([HEAD, event("a"), END])
    endpoint = make_endpoint(url, cache_bust=False)
    async with make_client(endpoint, 1) as client:
        result = await run_probe(client, endpoint, PROMPT)
    assert result.ok, result.error
    assert result.e2e is not None
    assert result.sent_ns is not None
    assert result.ended_ns is not None
    setup = result.phases["dns"] + result.phases["connect"]
    assert setup > 0
    wire = (result.ended_ns - result.sent_ns) / 1e9
    assert wire + setup - 0.002 <= result.e2e < wire + setup + 0.05  # not the 100 ms
