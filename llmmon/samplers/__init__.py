"""Samplers read the machine: each is one module whose ``sample()`` returns a complete list of
readings, or ``None`` when it has nothing to report (no GPU is not a failure).

``sample()`` blocks (psutil and NVML are synchronous), so the daemon calls it in a worker
thread, never on the event loop that timestamps probes.

To add a sampler: write ``samplers/<name>.py`` with its config class (a ``SamplerConfig``),
its ``FAMILIES`` and its sampler class, then add one row to ``SAMPLERS``. The config file's
``samplers.<name>`` section, the daemon's job and docs/metrics.md follow from the row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmmon.config import SamplerConfig
from llmmon.metrics.family import Family
from llmmon.samplers import gpu, host, process
from llmmon.samplers.base import Sampler, SamplerContext


@dataclass(frozen=True)
class SamplerKind:
    config: type[SamplerConfig]
    factory: Callable[[Any, SamplerContext], Sampler]  # (its config, the context)
    families: tuple[Family, ...]


SAMPLERS: dict[str, SamplerKind] = {
    "host": SamplerKind(host.HostConfig, lambda c, _: host.HostSampler(c), host.FAMILIES),
    "gpu": SamplerKind(gpu.GPUConfig, lambda _, ctx: gpu.GPUSampler(
        ctx.nvml, process_usage=ctx.gpu_usage), gpu.FAMILIES),
    "process": SamplerKind(process.ProcessConfig, lambda c, ctx: process.ProcessSampler(
        c.targets, ctx.gpu_usage), process.FAMILIES),
}


def sampler_families() -> tuple[Family, ...]:
    return tuple(f for kind in SAMPLERS.values() for f in kind.families)
