"""Probes over real loopback sockets: against the simulator, and against servers that fail."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpcore
import httpx
import pytest

from llmmon.daemon.httpserver import Request, Response, text
from llmmon.probe import streamed
from llmmon.probe.backend import StampedStream
from llmmon.probe.run import run_probe
from llmmon.probe.transport import make_client
from tests.conftest import COUNT, SimServer, make_endpoint, probe

pytestmark = pytest.mark.sim(ttft=0.05, itl=0.01)


async def test_streaming_chat_probe_measures_tokens(sim: SimServer) -> None:
    """A streamed chat probe gets the answer, usage tokens, TTFT and one gap per token pair."""
    result = await probe(sim.url())
    assert result.ok, result.error
    assert result.text == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
    assert result.output_tokens == 10
    assert result.tokens_from_usage
    assert result.prompt_tokens is not None
    assert result.prompt_tokens > 0
    assert len(result.itl) == 9
    assert result.ttft is not None
    assert 0.05 <= result.ttft < 0.5
    assert all(0.01 <= gap < 0.5 for gap in result.itl)
    assert result.e2e > result.ttft + sum(result.itl) * 0.99
    assert result.tokens_per_chunk == 1.0
    assert set(result.phases) == {"dns", "connect", "tls", "send", "wait"}
    assert result.phases["tls"] == 0.0
    assert result.status == 200


async def test_coalesced_chunks_show_in_tokens_per_chunk(sim: SimServer) -> None:
    """When a server sends 3 tokens per chunk, gaps are per chunk and the ratio says so."""
    sim.settings.tokens_per_chunk = 3
    result = await probe(sim.url(), max_tokens=9)
    assert result.ok
    assert result.output_tokens == 9
    assert result.content_chunks == 3
    assert len(result.itl) == 2
    assert result.tokens_per_chunk == 3.0


async def test_completions_api_and_non_streaming(sim: SimServer) -> None:
    """The completions API streams too; a non-streamed probe has E2E and usage but no TTFT."""
    url = sim.url()
    streamed = await probe(url, api="completions")
    assert streamed.ok
    assert streamed.output_tokens == 10
    assert len(streamed.itl) == 9
    whole = await probe(url, stream=False)
    assert whole.ok
    assert whole.output_tokens == 10
    assert whole.text.startswith("1, 2")
    assert whole.ttft is None
    assert whole.itl == []
    assert whole.e2e >= 0.05


async def test_simulated_server_error(sim: SimServer) -> None:
    """HTTP 500 from the server is http_5xx, with the status kept."""
    sim.settings.error_rate = 1.0
    result = await probe(sim.url())
    assert (result.error, result.status, result.ok) == ("http_5xx", 500, False)


def sse(*chunks: bytes, delay: float = 0.0, then_raise: bool = False) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk
            await asyncio.sleep(delay)
        if then_raise:
            raise ConnectionResetError

    return gen()


TOKEN = b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n'
EVENT_STREAM = {"Content-Type": "text/event-stream"}


@pytest.mark.parametrize(
    ("make_response", "reason", "status"),
    [
        (lambda: text(429, "slow down", **{"Retry-After": "3"}), "rate_limited", 429),
        (lambda: text(401, "who are you"), "http_4xx", 401),
        (lambda: text(503, "overloaded"), "http_5xx", 503),
        (lambda: text(302, "", Location="http://127.0.0.2/"), "protocol", 302),
        (lambda: Response(200, b"<html>proxy error</html>", {"Content-Type": "text/html"}),
         "protocol", 200),
        (lambda: Response(200, headers=EVENT_STREAM, stream=sse(TOKEN)), "protocol", 200),
        (lambda: Response(200, headers=EVENT_STREAM, stream=sse(b"data: {oops\n\n")),
         "protocol", 200),
        (lambda: Response(200, headers=EVENT_STREAM, stream=sse(TOKEN, then_raise=True)),
         "protocol", 200),
        (lambda: Response(200, headers=EVENT_STREAM, stream=sse(*[TOKEN] * 2000)),
         "too_large", 200),
        (lambda: Response(200, headers=EVENT_STREAM, stream=sse(*[TOKEN] * 100, delay=0.05)),
         "timeout", 200),
    ],
    ids=["429", "401", "503", "redirect", "html", "no-done", "bad-json", "reset", "too-large",
         "slow-drip"],
)
async def test_faults_become_bounded_reasons(serve: Any, make_response: Callable[[], Response],
                                             reason: str, status: int) -> None:
    """Each misbehaviour ends the probe with its reason; nothing raises."""

    async def handler(request: Request) -> Response:
        return make_response()

    url = await serve(handler)
    result = await probe(url, timeout=1.0, max_response_bytes=50_000)
    assert (result.error, result.status) == (reason, status)


async def test_connection_refused_is_connect() -> None:
    """Nobody listening is a connect error, not a timeout."""
    with socket.socket() as bound:
        # bound, so no other process can take the port, but never listening: refused
        bound.bind(("127.0.0.1", 0))
        result = await probe(f"http://127.0.0.1:{bound.getsockname()[1]}/v1")
    assert (result.error, result.status) == ("connect", None)


async def test_slow_first_byte_times_out_on_the_total_deadline(serve: Any) -> None:
    """A server that never answers is cut at the endpoint's timeout, not httpx's read timeout."""

    async def handler(request: Request) -> Response:
        await asyncio.sleep(30)
        return text(200, "late")

    url = await serve(handler)
    started = asyncio.get_running_loop().time()
    result = await probe(url, timeout=0.5)
    assert result.error == "timeout"
    assert asyncio.get_running_loop().time() - started < 2.0


async def test_api_key_sent_as_bearer(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key from api_key_env reaches the server as a bearer token."""
    monkeypatch.setenv("TEST_KEY", "k-123")
    seen: list[str | None] = []

    async def handler(request: Request) -> Response:
        seen.append(request.headers.get("authorization"))
        return text(401, "no")

    url = await serve(handler)
    await probe(url, api_key_env="TEST_KEY")
    assert seen == ["Bearer k-123"]


async def test_redirect_is_not_followed(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A redirect elsewhere is an error; the second server never sees the request or key."""
    monkeypatch.setenv("TEST_KEY", "k-123")
    hits: list[str] = []

    async def elsewhere(request: Request) -> Response:
        hits.append(request.headers.get("authorization", ""))
        return text(200, "gotcha")

    other = await serve(elsewhere)

    async def redirect(request: Request) -> Response:
        return text(307, "", Location=other + "/chat/completions")

    result = await probe(await serve(redirect), api_key_env="TEST_KEY")
    assert result.error == "protocol"
    assert hits == []


async def test_connection_is_reused_and_returned(sim: SimServer) -> None:
    """Probes on one client reuse a pooled connection (connect phase 0 after the first)."""
    ep = make_endpoint(sim.url())
    async with make_client(ep) as client:
        first = await run_probe(client, ep, COUNT)
        second = await run_probe(client, ep, COUNT)
        pool = client._transport.pool  # type: ignore[attr-defined]
        assert len(pool.connections) == 1
    assert first.phases["connect"] > 0
    assert second.phases["connect"] == 0.0


@pytest.mark.parametrize("path", ["direct", "httpx"])
async def test_httpx_error_inside_stream_is_protocol(sim: SimServer, path: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected read error inside the body is still a counted protocol error, on both
    ways a body is read (straight from the stream, or through httpx)."""
    if path == "httpx":
        async def broken(self: httpx.Response) -> AsyncIterator[bytes]:
            raise httpx.ReadError("boom")
            yield b""  # pragma: no cover

        monkeypatch.setattr(httpx.Response, "aiter_raw", broken)
        monkeypatch.setattr(streamed, "_direct", lambda response: False)
    else:
        read = StampedStream.read

        async def failing(self: StampedStream, max_bytes: int, timeout: float | None = None  # noqa: ASYNC109
                          ) -> bytes:
            if not self._heads:  # the body, read by the probe itself
                raise httpcore.ReadError("boom")
            return await read(self, max_bytes, timeout)

        monkeypatch.setattr(StampedStream, "read", failing)
    assert (await probe(sim.url())).error == "protocol"
