"""A server that closes a kept-alive connection as it is reused (llama-server does this
after a streamed response): the probe asks once more on a new connection, and only then."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from llmmon.config import Prompt
from llmmon.probe.run import run_probe
from llmmon.probe.transport import make_client
from tests.conftest import make_endpoint, probe_twice

PROMPT = Prompt(name="p", text="hi", max_tokens=4)


def _stream() -> bytes:
    chunk = {"model": "m", "choices": [{"delta": {"content": "hello"}}]}
    body = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


async def _read_request(reader: asyncio.StreamReader) -> bool:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    await reader.readexactly(length)
    return True


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, list[int]]]:
    """Answers the first request of each connection; a second request on the same
    connection is read and the connection closed unanswered. ``first_too``: every request
    goes unanswered."""
    first_too = getattr(request, "param", False)
    served: list[int] = []  # requests answered, per connection (its number)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = len(served) + 1
        served.append(0)
        try:
            await _read_request(reader)
            if not first_too:
                writer.write(_stream())
                await writer.drain()
                served[number - 1] += 1
                await _read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    async with srv:
        yield f"http://127.0.0.1:{port}/v1", served
        srv.close()


async def test_a_reused_connection_closed_unanswered_is_asked_again(
        server: tuple[str, list[int]]) -> None:
    url, served = server
    first, second = await probe_twice(url, PROMPT)
    assert first.ok, first.detail
    assert second.ok, second.detail  # the retry, on a second connection
    assert (first.retried, second.retried) == (False, True)
    assert served == [1, 1]
    assert second.phases.get("connect") is not None  # measured on the new connection


async def test_a_connection_closed_after_the_server_took_its_time_is_not_asked_again(
        server: tuple[str, list[int]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A close later than the window after the request (the window made 0 here, so any
    close is late): the server may have worked on it. A failure, not a retry that would
    send it twice and hide the drop."""
    monkeypatch.setattr("llmmon.probe.trace.RETRY_WINDOW_NS", 0)
    url, served = server
    first, second = await probe_twice(url, PROMPT)
    assert first.ok, first.detail
    assert second.error == "protocol"
    assert not second.retried
    assert served == [1]


@pytest.mark.parametrize("server", [True], indirect=True)
async def test_a_new_connection_closed_unanswered_is_not_asked_again(
        server: tuple[str, list[int]]) -> None:
    url, served = server
    endpoint = make_endpoint(url, cache_bust=False)
    async with make_client(endpoint) as client:
        result = await run_probe(client, endpoint, PROMPT)
    assert result.error == "protocol"
    assert len(served) == 1  # one connection, one request: no retry
