"""Device memory per pid: the GPU sampler writes it, the process sampler reads it, so NVML
has one owner."""

from __future__ import annotations

import threading


class GPUMemoryByPid:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: dict[int, float] = {}

    def replace(self, used: dict[int, float]) -> None:
        with self._lock:
            self._used = used

    def get(self, pid: int) -> float | None:
        with self._lock:
            return self._used.get(pid)
