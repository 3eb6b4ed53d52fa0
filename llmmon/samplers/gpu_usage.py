"""What each pid uses of the GPUs: the GPU sampler writes it, the process sampler reads it,
so NVML has one owner."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class PidUsage:
    memory: float | None = None  # bytes, all GPUs summed; None where NVML withheld it
    sm: dict[str, float] = field(default_factory=dict)  # GPU index -> SM utilisation (0..1)


class GPUUsageByPid:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: dict[int, PidUsage] = {}

    def replace(self, used: dict[int, PidUsage]) -> None:
        with self._lock:
            self._used = used

    def get(self, pid: int) -> PidUsage | None:
        with self._lock:
            return self._used.get(pid)
