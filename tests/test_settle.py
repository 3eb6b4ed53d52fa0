"""The daemon freezes for the garbage collector twice: at start-up, and once every endpoint
has had time for its first probe (what those probes built lives on too)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from llmmon.config.settings import Settings
from llmmon.daemon import runtime as runtime_module
from llmmon.daemon.runtime import Runtime
from tests.conftest import SimServer


async def test_a_second_freeze_after_the_first_probes(sim: SimServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    freezes: list[float] = []
    loop = asyncio.get_running_loop()

    class FakeGC:  # the test process's own objects are not frozen
        @staticmethod
        def collect(*args: Any) -> int:
            return 0

        @staticmethod
        def freeze() -> None:
            freezes.append(loop.time())

    monkeypatch.setattr(runtime_module, "gc", FakeGC)
    settings = Settings(listen="127.0.0.1:0", samplers={"host": {"enabled": False},
                                                        "gpu": {"enabled": False}},
                        endpoints=[{"name": "e", "provider": "openai", "url": sim.url(),
                                    "model": "m", "interval": "1s", "timeout": "1s"}])
    runtime = Runtime(settings, registry=CollectorRegistry(auto_describe=True))
    task = asyncio.create_task(runtime.run())
    try:
        for _ in range(200):  # the first, at start-up
            if freezes:
                break
            await asyncio.sleep(0.01)
        assert len(freezes) == 1
        for _ in range(1000):  # interval + timeout + grace = 4 s later
            if len(freezes) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(freezes) == 2
        assert 3.5 <= freezes[1] - freezes[0] <= 8
    finally:
        runtime._stop.set()
        await task
