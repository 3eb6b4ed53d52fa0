"""Garbage-collection pauses on the daemon's loop: a daemon in this process probing N
simulated endpoints every second (the simulator in another process), every collection
timed through gc.callbacks, once as the daemon runs (start-up frozen with gc.freeze(), and
again once every endpoint has probed) and once with no freeze, the reference, in the same
process.

    .venv/bin/python benchmarks/gc_pauses.py [--endpoints 100] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_start import wait_up
from soak import free_port, simulator

from llmmon.config.settings import Settings
from llmmon.daemon import runtime as runtime_module
from llmmon.daemon.runtime import Runtime

_real_freeze_again = runtime_module._freeze_again
_settling = [False]


def _settle() -> None:
    """The daemon's second freeze, its own full collection reported apart."""
    _settling[0] = True
    try:
        _real_freeze_again()
    finally:
        _settling[0] = False

pauses: list[tuple[int | str, float, float]] = []  # (generation, wall s, CPU s)
_started = [0.0, 0.0]


def _timed(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[:] = time.perf_counter(), time.thread_time()
    else:
        generation = "settle" if _settling[0] else info["generation"]
        pauses.append((generation, time.perf_counter() - _started[0],
                       time.thread_time() - _started[1]))


async def one(url: str, endpoints: int, seconds: float, frozen: bool) -> None:
    settings = Settings(listen="127.0.0.1:0", endpoints=[
        {"name": f"ep{i}", "provider": "openai", "url": url, "model": "sim", "interval": "1s",
         "timeout": "5s", "max_tokens": 16} for i in range(endpoints)],
        samplers={"host": {"interval": "1s"}, "gpu": {"enabled": False},
                  "process": {"enabled": False}})
    # The reference never freezes: neither at start-up (undone below) nor once settled.
    runtime_module._freeze_again = _settle if frozen else lambda: None
    runtime = Runtime(settings)
    task = asyncio.create_task(runtime.run())
    while not runtime.ready:  # noqa: ASYNC110 (the runtime has no ready event to wait on)
        await asyncio.sleep(0.05)
    if not frozen:
        gc.unfreeze()
    pauses.clear()
    gc.callbacks.append(_timed)
    try:
        await asyncio.sleep(seconds)
    finally:
        gc.callbacks.remove(_timed)
        runtime._stop.set()
        await task
    gc.unfreeze()
    by_gen = {g: [(w, c) for gen, w, c in pauses if gen == g] for g in (0, 1, 2, "settle")}
    # Wall time holds any preemption by the other processes on these cores; the
    # collecting thread's CPU time is the collection's own work.
    print(f"{endpoints} endpoints, {seconds:.0f} s, {'frozen' if frozen else 'not frozen'}: "
          + "; ".join(_gen(g, v) for g, v in by_gen.items()), flush=True)


def _gen(generation: int | str, timed: list[tuple[float, float]]) -> str:
    wall = max((w for w, _ in timed), default=0.0) * 1e3
    cpu = max((c for _, c in timed), default=0.0) * 1e3
    what = "the settling collection" if generation == "settle" else f"gen {generation}"
    return f"{what}: {len(timed)} collections, max {wall:.2f} ms wall, {cpu:.2f} ms CPU"


async def main(endpoints: int, seconds: float) -> None:
    port = free_port()
    sim = simulator(port)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_up(url)
        for frozen in (False, True):
            await one(url, endpoints, seconds, frozen)
    finally:
        sim.terminate()
        sim.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    asyncio.run(main(args.endpoints, args.seconds))
