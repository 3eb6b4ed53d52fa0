"""What a sampler is, and what the daemon hands every sampler it builds."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

from llmmon.metrics.family import Reading
from llmmon.samplers.gpu_usage import GPUUsageByPid


class Sampler(Protocol):
    name: str

    def sample(self) -> list[Reading] | None:
        """A complete list of readings, or None when there is nothing to report."""

    def close(self) -> None: ...


@dataclass
class SamplerContext:
    """Shared by the samplers of one daemon: the NVML module (None: the real ``pynvml``) and
    the GPU sampler's per-pid usage for the process sampler."""

    nvml: ModuleType | None = None
    gpu_usage: GPUUsageByPid = field(default_factory=GPUUsageByPid)
