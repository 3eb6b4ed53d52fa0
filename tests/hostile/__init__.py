"""Hostile peers and inputs over loopback: endpoints, clients and files as attackers make
them."""

import asyncio
import time
from collections.abc import Callable


async def heartbeat(gaps: list[float], done: Callable[[], bool]) -> None:
    """How long the loop kept this task waiting, beat after beat (a beat asks for 1 ms),
    until ``done()``."""
    last = time.monotonic()
    while not done():
        await asyncio.sleep(0.001)
        now = time.monotonic()
        gaps.append(now - last)
        last = now


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(len(ordered) * 0.99)]
