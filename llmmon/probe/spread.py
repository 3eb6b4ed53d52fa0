"""The load probe's streams spread over worker processes (``load.processes``).

One event loop reads about 30,000 streamed events a second on a core
(``benchmarks/cpu_per_event.py``); a burst that brings more makes it late, and a late read
takes two events at once and stamps both with the second's arrival (Linux stamps a read with
its last segment). So a burst's streams may be spread over processes, each with its own loop
and its own share of streams and requests, all stamping with CLOCK_MONOTONIC (one clock for
the machine) and starting together; their observations are merged as they are
(``load.summarize``). The workers are spawned once and kept: not forked, as the daemon has
threads.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING

from llmmon.config import EndpointConfig, LoadConfig
from llmmon.probe.load import Burst, LoadResult, burst, load_clients, summarize

log = logging.getLogger(__name__)
START_IN = 0.2  # seconds: the shares are handed out, then all start at one instant
SPARE = 30.0  # seconds past the burst's timeout before the workers are given up on
if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

_POOLS: dict[tuple[int, int], ProcessPoolExecutor] = {}  # by (processes, nice)


def processes_for(load: LoadConfig) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    wanted = load.processes or cpus or 1
    return max(1, min(wanted, load.concurrency, load.requests))


def shares(load: LoadConfig, n: int) -> list[LoadConfig]:
    """``load`` cut in ``n``: streams and requests as even as they go."""
    def part(total: int, i: int) -> int:
        return total // n + (i < total % n)

    return [load.model_copy(update={"concurrency": part(load.concurrency, i),
                                    "requests": part(load.requests, i)})
            for i in range(n) if part(load.concurrency, i) and part(load.requests, i)]


async def run_load_spread(endpoint: EndpointConfig, load: LoadConfig) -> LoadResult:
    n = processes_for(load)
    if n == 1:
        return summarize(load, [await _share(endpoint, load, time.monotonic())])
    # Imported here: multiprocessing and pickle are 0.9 MiB of a daemon that never spreads.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    key = (n, load.nice)
    pool = _POOLS.get(key)
    if pool is None:
        shutdown(wait=False)  # another size's workers (a reload changed it): not kept idle
        pool = _POOLS[key] = ProcessPoolExecutor(
            n, mp_context=multiprocessing.get_context("spawn"), initializer=prioritize,
            initargs=(load.nice,))
    loop = asyncio.get_running_loop()
    start_at = time.monotonic() + START_IN
    parts = [loop.run_in_executor(pool, _work, endpoint, share, start_at)
             for share in shares(load, n)]
    try:
        async with asyncio.timeout(load.timeout + START_IN + SPARE):
            done = await asyncio.gather(*parts)
    except (BrokenProcessPool, TimeoutError):
        _POOLS.pop(key, None)  # a worker died or hung: the next burst gets fresh ones
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    if (ran := refused(load.nice, [nice for _, nice in done])) and key not in _WARNED:
        _WARNED.add(key)
        log.warning("load: the burst's processes could not take nice %d (below 0 it needs "
                    "CAP_SYS_NICE): they ran at %s", load.nice, ran)
    return summarize(load, [b for b, _ in done])


def refused(wanted: int, ran: list[int]) -> list[int]:
    """The nice values the workers ran at, where any is not the one asked for; else none."""
    return sorted(set(ran)) if any(nice != wanted for nice in ran) else []


_WARNED: set[tuple[int, int]] = set()


def prioritize(nice: int) -> None:
    """A worker's start: take ``nice``; where that is refused, run at what it has."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError:
        pass  # reported by the burst (run_load_spread), where the daemon logs


def _work(endpoint: EndpointConfig, load: LoadConfig, start_at: float) -> tuple[Burst, int]:
    """A share of the burst, and the nice value it ran at."""
    return (asyncio.run(_share(endpoint, load, start_at)),
            os.getpriority(os.PRIO_PROCESS, 0))


async def _share(endpoint: EndpointConfig, load: LoadConfig, start_at: float) -> Burst:
    clients = load_clients(endpoint, load)  # connections are made in the burst, as before
    try:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        return await burst(clients, endpoint, load)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)


def shutdown(wait: bool = True) -> None:
    """Stop the kept workers (a new size, and tests)."""
    while _POOLS:
        _POOLS.popitem()[1].shutdown(wait=wait, cancel_futures=True)
