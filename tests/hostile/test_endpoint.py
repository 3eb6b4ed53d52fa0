"""A hostile endpoint over loopback: answers that never stop, in pieces too small to be worth
parsing. The probe must give the event loop its turns, end at its timeout, and never call a
flood a success."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from llmmon.sim.flood import FLOODS, FRAMED, Flood
from tests.conftest import probe
from tests.hostile import heartbeat, p99


@pytest.fixture
def flood() -> Iterator[Callable[[str], Flood]]:
    servers: list[Flood] = []

    def start(kind: str) -> Flood:
        servers.append(Flood(FLOODS[kind], framed=kind in FRAMED))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize("kind", FLOODS)
async def test_a_flood_ends_at_the_timeout_and_the_loop_keeps_its_turns(
        flood: Callable[[str], Flood], kind: str) -> None:
    """64 MiB allowed, an answer that never ends: the probe ends as a timeout at its timeout
    (± 100 ms), and meanwhile the loop runs other work every few milliseconds."""
    server = flood(kind)
    gaps: list[float] = []
    stop = asyncio.Event()
    beats = asyncio.create_task(heartbeat(gaps, stop.is_set))
    try:
        result = await probe(f"http://127.0.0.1:{server.port}/v1", timeout="2s",
                             max_response_bytes=64 << 20)
    finally:
        stop.set()
        await beats
    assert result.error == "timeout", (result.error, result.detail)
    assert result.e2e is not None
    assert 2.0 - 0.1 <= result.e2e <= 2.0 + 0.1
    assert server.sent > 1 << 20  # it did flood (how much depends on how fast we parse)
    assert p99(gaps) < 0.05  # the loop's turn-around
    assert max(gaps) < 0.25


@pytest.mark.parametrize("kind", FLOODS)
async def test_a_flood_past_the_cap_is_too_large_not_success(
        flood: Callable[[str], Flood], kind: str) -> None:
    server = flood(kind)
    result = await probe(f"http://127.0.0.1:{server.port}/v1", timeout="20s")
    assert result.error == "too_large", (result.error, result.detail)
    if kind == "tiny_tokens":  # every token kept, joined once
        assert len(result.text) == result.content_chunks > 50_000
