"""The processes on a GPU: device memory (``nvmlDeviceGetComputeRunningProcesses``) and SM
utilisation (``nvmlDeviceGetProcessUtilization``, the samples NVML took since the last
tick), by pid, for the GPU's own series and for the process sampler's targets."""

from __future__ import annotations

from typing import Any

import psutil

from llmmon.samplers.gpu_families import GPU_PROC_MEM, GPU_PROC_SM
from llmmon.samplers.gpu_fields import Fields
from llmmon.samplers.gpu_usage import PidUsage


class ProcessReader:
    def __init__(self) -> None:
        self._names: dict[int, str] = {}  # pid -> process name, as processes come and go
        self._seen: dict[int, int] = {}  # GPU index -> newest utilisation sample's time (µs)

    def read(self, fields: Fields, handle: Any, usage: dict[int, PidUsage]) -> None:
        nv, gpu_index = fields.nv, fields.gpu[0]

        def memory(running: Any) -> list[tuple[tuple[str, ...], float]]:
            out: list[tuple[tuple[str, ...], float]] = []
            for proc in running:
                used = getattr(proc, "usedGpuMemory", None)
                if used is None:  # withheld (no permission, or MIG without privileges)
                    continue
                pid_usage = usage.setdefault(proc.pid, PidUsage())
                pid_usage.memory = (pid_usage.memory or 0.0) + float(used)
                out.append(((str(proc.pid), self.name(proc.pid)), float(used)))
            return out

        fields.each(GPU_PROC_MEM, lambda: nv.nvmlDeviceGetComputeRunningProcesses(handle),
                    memory)

        def utilisation(samples: Any) -> list[tuple[tuple[str, ...], float]]:
            by_pid: dict[int, list[float]] = {}
            for s in samples:
                by_pid.setdefault(s.pid, []).append(s.smUtil / 100.0)
                self._seen[fields.index] = max(self._seen.get(fields.index, 0), s.timeStamp)
            out: list[tuple[tuple[str, ...], float]] = []
            for pid, values in by_pid.items():
                mean = sum(values) / len(values)
                usage.setdefault(pid, PidUsage()).sm[gpu_index] = mean
                out.append(((str(pid), self.name(pid)), mean))
            return out

        fields.each(GPU_PROC_SM, lambda: self._samples(nv, handle, fields.index), utilisation)

    def _samples(self, nv: Any, handle: Any, index: int) -> Any:
        try:
            return nv.nvmlDeviceGetProcessUtilization(handle, self._seen.get(index, 0))
        except nv.NVMLError as exc:
            # No process ran a kernel since the last tick: NVML says NotFound (and pynvml
            # turns a successful empty answer into an "error" with code 0).
            if isinstance(exc, nv.NVMLError_NotFound) or exc.value == nv.NVML_SUCCESS:
                return []
            raise

    def name(self, pid: int) -> str:
        if pid not in self._names:
            try:
                self._names[pid] = psutil.Process(pid).name()
            except psutil.Error:
                return ""  # in another pid namespace, or gone: the pid still tells
        return self._names[pid]

    def forget(self, index: int) -> None:
        self._seen.pop(index, None)
