"""The sampler runner: a failing or hanging sampler affects only itself."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry

from llmmon import metrics as m
from llmmon.config import Settings
from llmmon.metrics import Reading
from llmmon.runtime import Runtime, SamplerState


class Broken:
    name = "broken"

    def sample(self) -> list[Reading]:
        raise RuntimeError("sensor on fire")

    def close(self) -> None:
        pass


class Hung:
    name = "hung"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def sample(self) -> list[Reading]:
        self.calls += 1
        self.release.wait(10)
        return []

    def close(self) -> None:
        self.release.set()


class Fine:
    name = "fine"

    def sample(self) -> list[Reading]:
        return [(m.HOST_LOAD1, (), 1.5)]

    def close(self) -> None:
        pass


def runtime() -> tuple[Runtime, CollectorRegistry]:
    registry = CollectorRegistry()
    return Runtime(Settings(), None, registry=registry), registry


async def test_failing_sampler_is_isolated() -> None:
    """An exception marks only that sampler failed (and counts a job error)."""
    rt, registry = runtime()
    rt.samplers = {"broken": SamplerState(Broken(), 1.0), "fine": SamplerState(Fine(), 1.0)}
    await rt._sampler_job("broken")
    await rt._sampler_job("fine")
    get = registry.get_sample_value
    assert get("llmmon_sampler_success", {"sampler": "broken"}) == 0
    assert get("llmmon_sampler_success", {"sampler": "fine"}) == 1
    assert get("llmmon_scheduler_job_errors_total", {"task": "sampler:broken"}) == 1
    assert get("llmmon_host_load1") == 1.5
    await rt.shutdown()


async def test_hung_sampler_is_not_called_again_while_stuck(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A sampler stuck in its thread past its deadline is skipped, not piled up."""
    monkeypatch.setattr("llmmon.runtime.DEADLINE_GRACE", 0.05)
    rt, registry = runtime()
    hung = Hung()
    rt.samplers = {"hung": SamplerState(hung, 0.05)}
    try:
        await rt._sampler_job("hung")  # hits the deadline; the thread is still inside
        await rt._sampler_job("hung")  # skipped: the previous call has not returned
    finally:
        hung.release.set()
    get = registry.get_sample_value
    assert hung.calls == 1
    assert get("llmmon_sampler_success", {"sampler": "hung"}) == 0
    assert get("llmmon_scheduler_missed_runs_total", {"task": "sampler:hung"}) == 1
    assert get("llmmon_scheduler_job_errors_total", {"task": "sampler:hung"}) == 1
    await rt.shutdown()
