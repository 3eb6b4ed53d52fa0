"""Host CPU, load and memory through psutil."""

from __future__ import annotations

import os

import psutil

from llmmon import metrics as m
from llmmon.metrics import Reading

# psutil's field names for CPU modes, exported as the `mode` label where present.
_CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


class HostSampler:
    name = "host"

    def __init__(self) -> None:
        self._previous: psutil._common.scputimes | None = None  # type: ignore[name-defined]

    def sample(self) -> list[Reading]:
        times = psutil.cpu_times()
        readings: list[Reading] = [
            (m.HOST_CPU_SECONDS, (mode,), float(getattr(times, mode)))
            for mode in _CPU_MODES
            if hasattr(times, mode)
        ]
        if self._previous is not None and (ratio := _busy_ratio(self._previous, times)) is not None:
            readings.append((m.HOST_CPU_RATIO, (), ratio))
        self._previous = times
        load1, load5, load15 = os.getloadavg()
        memory, swap = psutil.virtual_memory(), psutil.swap_memory()
        readings += [
            (m.HOST_LOAD1, (), load1),
            (m.HOST_LOAD5, (), load5),
            (m.HOST_LOAD15, (), load15),
            (m.HOST_MEM_TOTAL, (), float(memory.total)),
            (m.HOST_MEM_AVAILABLE, (), float(memory.available)),
            (m.HOST_MEM_USED, (), float(memory.total - memory.available)),
            (m.HOST_SWAP_TOTAL, (), float(swap.total)),
            (m.HOST_SWAP_USED, (), float(swap.used)),
        ]
        return readings

    def close(self) -> None:
        pass


def _busy_ratio(before: object, after: object) -> float | None:
    """Busy share of CPU time between two cpu_times() readings (idle and iowait are idle)."""
    def total(t: object) -> float:
        fields: tuple[str, ...] = getattr(t, "_fields", ())
        # guest time is already counted in user and nice
        return sum(float(getattr(t, f)) for f in fields if f not in ("guest", "guest_nice"))

    def idle(t: object) -> float:
        return float(getattr(t, "idle", 0.0)) + float(getattr(t, "iowait", 0.0))

    elapsed = total(after) - total(before)
    if elapsed <= 0:
        return None
    return min(1.0, max(0.0, 1.0 - (idle(after) - idle(before)) / elapsed))
