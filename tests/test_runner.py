"""The sampler runner: a failing or hanging sampler affects only itself."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry

from llmmon.config.settings import Settings
from llmmon.daemon.runtime import Runtime, SamplerState
from llmmon.metrics.family import Reading
from llmmon.samplers import host as hs


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
        return [(hs.HOST_LOAD1, (), 1.5)]

    def close(self) -> None:
        pass


def runtime() -> tuple[Runtime, CollectorRegistry]:
    registry = CollectorRegistry()
    return Runtime(Settings(), None, registry=registry), registry


async def test_failing_sampler_is_isolated() -> None:
    """An exception marks only that sampler failed (and counts a job error)."""
    rt, registry = runtime()
    rt.samplers = {"broken": SamplerState(Broken(), 1.0), "fine": SamplerState(Fine(), 1.0)}
    for name in rt.samplers:
        rt.add_sampler_job(name)
    await rt.jobs.run("sampler:broken")
    await rt.jobs.run("sampler:fine")
    get = registry.get_sample_value
    assert get("llmmon_sampler_success", {"sampler": "broken"}) == 0
    assert get("llmmon_sampler_success", {"sampler": "fine"}) == 1
    assert get("llmmon_scheduler_job_errors_total", {"task": "sampler:broken"}) == 1
    assert get("llmmon_host_load1") == 1.5
    await rt.shutdown()


async def test_hung_sampler_is_not_called_again_while_stuck(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A sampler stuck in its thread past its deadline is skipped, not piled up."""
    monkeypatch.setattr("llmmon.daemon.runtime.DEADLINE_GRACE", 0.05)
    rt, registry = runtime()
    hung = Hung()
    rt.samplers = {"hung": SamplerState(hung, 0.05)}
    rt.add_sampler_job("hung")
    try:
        await rt.jobs.run("sampler:hung")  # hits the deadline; the thread is still inside
        await rt.jobs.run("sampler:hung")  # skipped: the previous call has not returned
    finally:
        hung.release.set()
    get = registry.get_sample_value
    assert hung.calls == 1
    assert get("llmmon_sampler_success", {"sampler": "hung"}) == 0
    assert get("llmmon_scheduler_missed_runs_total", {"task": "sampler:hung"}) == 1
    assert get("llmmon_scheduler_job_errors_total", {"task": "sampler:hung"}) == 1
    # the skipped run reported nothing: the duration is still the one that hit the deadline
    duration = get("llmmon_sampler_duration_seconds", {"sampler": "hung"})
    assert duration is not None
    assert duration >= 0.05
    await rt.shutdown()
