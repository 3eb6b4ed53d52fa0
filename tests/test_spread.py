"""The load probe's streams spread over worker processes: shares cut evenly, and a burst run
in two spawned processes against a real (in-process) server merges into one result."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from llmmon.config import LoadConfig
from llmmon.probe import spread
from llmmon.probe.load import most_at_once
from tests.conftest import SimServer, make_endpoint


@pytest.mark.parametrize(("concurrency", "requests", "n", "expected"), [
    (4, 12, 2, [(2, 6), (2, 6)]),
    (5, 7, 2, [(3, 4), (2, 3)]),
    (3, 3, 4, [(1, 1), (1, 1), (1, 1)]),  # no empty share
    (1, 9, 1, [(1, 9)]),
])
def test_shares_are_as_even_as_they_go(concurrency: int, requests: int, n: int,
                                       expected: list[tuple[int, int]]) -> None:
    load = LoadConfig(concurrency=concurrency, requests=requests)
    got = [(s.concurrency, s.requests) for s in spread.shares(load, n)]
    assert got == expected
    assert sum(c for c, _ in got) == concurrency
    assert sum(r for _, r in got) == requests


def test_processes_are_capped_by_the_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spread.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert spread.processes_for(LoadConfig(processes=0, concurrency=64)) == 4
    assert spread.processes_for(LoadConfig(processes=0, concurrency=2)) == 2
    assert spread.processes_for(LoadConfig(processes=3, concurrency=8, requests=2)) == 2
    assert spread.processes_for(LoadConfig(processes=1, concurrency=8)) == 1


def test_overlap_of_spans_from_several_processes_is_exact() -> None:
    """Spans from two processes (one clock) merge: the most at once counts across them."""
    first = [(0, 10), (10, 20)]  # one process: never two at once
    second = [(5, 15)]
    assert most_at_once(first) == 1
    assert most_at_once(first + second) == 2


@pytest.fixture
def pools() -> Iterator[None]:
    yield
    spread.shutdown()


async def test_a_burst_spread_over_two_processes_merges_into_one_result(
        sim: SimServer, pools: None) -> None:
    ep = make_endpoint(sim.url(), load={"concurrency": 4, "requests": 12, "processes": 2})
    assert ep.load is not None
    await spread.run_load_spread(ep, ep.load)  # the workers are spawned by the first burst
    result = await spread.run_load_spread(ep, ep.load)
    assert sim.requests == 24
    assert result.requests == 12
    assert result.succeeded == 12, result.errors
    assert result.output_tokens == 12 * 20
    # the workers, already there, start together: their streams overlap
    assert 2 < result.concurrency <= 4
    assert len(result.send_waits) == 12
    pool = spread._POOLS[(2, 0)]
    assert len({p.pid for p in pool._processes.values()}) == 2


async def test_the_workers_take_the_configured_nice_value(sim: SimServer, pools: None) -> None:
    """``load.nice``: every worker of the burst runs at it (a positive value needs no
    privilege, so this holds for any user)."""
    ep = make_endpoint(sim.url(), load={"concurrency": 2, "requests": 2, "processes": 2,
                                        "nice": 7})
    assert ep.load is not None
    result = await spread.run_load_spread(ep, ep.load)
    assert result.succeeded == 2, result.errors
    pool = spread._POOLS[(2, 7)]
    niceness = {pool.submit(os.getpriority, os.PRIO_PROCESS, 0).result(timeout=30)
                for _ in range(8)}
    assert niceness == {7}
    assert os.getpriority(os.PRIO_PROCESS, 0) != 7  # the daemon's own is untouched


def test_a_refused_nice_value_is_reported_with_what_the_workers_ran_at() -> None:
    assert spread.refused(-10, [-10, -10]) == []
    assert spread.refused(-10, [0, 0]) == [0]
    assert spread.refused(-10, [-10, 0]) == [-10, 0]
    assert spread.refused(5, [5]) == []


def test_a_worker_refused_its_nice_value_still_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def deny(*args: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", deny)
    spread.prioritize(-10)  # no exception: the burst runs, and says what it ran at
