"""The GPUs during a benchmark step, when the machine has them: energy from NVML's
cumulative counter (read before and after, so nothing is missed between samples),
utilisation sampled along. Without NVML, or without a GPU, nothing: never a zero."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from llmmon.bench.model import GPUSample
from llmmon.samplers.energy import joules_between, read_energy

log = logging.getLogger(__name__)


def _nvml() -> Any:
    import pynvml

    return pynvml


class GPUWatcher:
    """``async with GPUWatcher() as gpus: ...`` then ``gpus.summary(output_tokens)``."""

    def __init__(self, nvml: Any | None = None, every: float = 0.5) -> None:
        self.nvml: Any = nvml
        self.every = every
        self.handles: list[Any] = []
        self._energy: dict[str, int] | None = None
        self._utilization: list[float] = []
        self._began = self._ended = 0.0
        self._task: asyncio.Task[None] | None = None
        self.joules: float | None = None

    async def __aenter__(self) -> GPUWatcher:
        try:
            nvml = self.nvml = self.nvml or _nvml()
            nvml.nvmlInit()
            self.handles = [nvml.nvmlDeviceGetHandleByIndex(i)
                            for i in range(nvml.nvmlDeviceGetCount())]
            self._energy = read_energy(nvml)
        except Exception as exc:  # no driver, no GPU, no energy counter
            log.debug("no GPU figures for this run: %s", type(exc).__name__)
            self.handles = []
            return self
        self._began = time.monotonic()
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if not self.handles:
            return
        self._ended = time.monotonic()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # Per GPU UUID: a GPU lost during the step counts for nothing, not for an error.
        self.joules = joules_between(self._energy, read_energy(self.nvml))
        with contextlib.suppress(Exception):
            self.nvml.nvmlShutdown()

    async def _sample(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                rates = [self.nvml.nvmlDeviceGetUtilizationRates(h).gpu for h in self.handles]
                self._utilization.append(max(rates) / 100)
            await asyncio.sleep(self.every)

    def summary(self, output_tokens: int) -> GPUSample | None:
        if not self.handles or self.joules is None:
            return None
        seconds = max(1e-9, self._ended - self._began)
        util = self._utilization
        return GPUSample(gpus=len(self.handles), energy_joules=self.joules,
                         average_power_watts=self.joules / seconds,
                         utilization_mean=sum(util) / len(util) if util else None,
                         joules_per_output_token=self.joules / output_tokens
                         if output_tokens else None)
