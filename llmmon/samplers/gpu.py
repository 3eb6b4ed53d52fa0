"""NVIDIA GPUs through NVML (nvidia-ml-py, imported as ``pynvml``).

A field a GPU does not support is left out for that GPU, never exported as 0. A GPU that
is lost reports ``llmmon_gpu_up 0`` and nothing else; NVML is then re-initialised with
backoff while the other GPUs go on reporting. Without NVML or a driver the sampler has no
data, which is not a failure, and says so once in the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import psutil

from llmmon import metrics as m
from llmmon.metrics import Family, Reading
from llmmon.samplers.process import GPUMemoryByPid

log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0
# NVML's clock event ("throttle") reason bits, as the `reason` label.
THROTTLE_REASONS = {
    0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap",
    0x8: "hw_slowdown", 0x10: "sync_boost", 0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown", 0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


def import_nvml() -> ModuleType | None:
    try:
        import pynvml
    except ImportError:
        return None
    module: ModuleType = pynvml
    return module


class GPUSampler:
    name = "gpu"

    def __init__(self, nvml: ModuleType | None = None, clock: Callable[[], float] = time.monotonic,
                 process_memory: GPUMemoryByPid | None = None) -> None:
        self._nvml = nvml if nvml is not None else import_nvml()
        self._clock = clock
        self._process_memory = process_memory
        self._initialised = False
        self._absent_logged = False
        self._retry_at = 0.0
        self._backoff = 5.0
        self._identity: dict[int, tuple[str, ...]] = {}
        self._lost: dict[int, tuple[float, float]] = {}  # index -> (retry at, backoff)
        self._names: dict[int, str] = {}  # pid -> process name, as processes come and go

    def sample(self) -> list[Reading] | None:
        if not self._ensure_init():
            return None
        nv = self._nvml
        assert nv is not None
        now = self._clock()
        if any(at <= now for at, _ in self._lost.values()) and not self._reinit():
            return None
        readings: list[Reading] = []
        by_pid: dict[int, float] = {}
        for index in range(nv.nvmlDeviceGetCount()):
            retry_at, backoff = self._lost.get(index, (0.0, 0.0))
            if retry_at > now:  # lost, and not yet time to look again
                readings.append((m.GPU_UP, (str(index),), 0.0))
                continue
            try:
                readings += self._sample_gpu(index, by_pid)
                self._lost.pop(index, None)
            except nv.NVMLError as exc:
                if not _is_lost(nv, exc):
                    raise
                if not backoff:
                    log.warning("GPU %d is lost (%s)", index, type(exc).__name__)
                backoff = min(backoff * 2, MAX_BACKOFF) if backoff else 5.0
                self._lost[index] = (now + backoff, backoff)
                self._identity.pop(index, None)
                readings.append((m.GPU_UP, (str(index),), 0.0))
        if self._process_memory is not None:
            self._process_memory.replace(by_pid)
        return readings

    def _reinit(self) -> bool:
        """Re-initialise NVML before looking at a lost GPU again: after a GPU reset or a
        driver reload, old handles stay dead until NVML starts afresh."""
        self._shutdown()
        return self._ensure_init()

    def _ensure_init(self) -> bool:
        nv = self._nvml
        if nv is None:
            self._log_absent("nvidia-ml-py is not installed")
            return False
        if self._initialised:
            return True
        if self._clock() < self._retry_at:
            return False
        try:
            nv.nvmlInit()
        except nv.NVMLError as exc:
            self._retry_at = self._clock() + self._backoff
            self._backoff = min(self._backoff * 2, MAX_BACKOFF)
            self._log_absent(f"NVML unavailable ({type(exc).__name__})")
            return False
        self._initialised, self._backoff = True, 5.0
        return True

    def _log_absent(self, why: str) -> None:
        if not self._absent_logged:
            log.info("GPU sampler has no data: %s", why)
            self._absent_logged = True

    def _sample_gpu(self, index: int, by_pid: dict[int, float]) -> list[Reading]:
        nv = self._nvml
        assert nv is not None
        handle = nv.nvmlDeviceGetHandleByIndex(index)
        ident = self._identity.get(index) or self._identify(index, handle)
        gpu = ident[:2]
        readings: list[Reading] = [(m.GPU_UP, (str(index),), 1.0), (m.GPU_INFO, ident, 1.0)]

        def field(family: Family, read: Callable[[], Any], extra: tuple[str, ...] = ()) -> None:
            try:
                readings.append((family, gpu + extra, float(read())))
            except nv.NVMLError_NotSupported:
                pass  # this GPU has no such sensor: leave the series out

        util = _once(lambda: nv.nvmlDeviceGetUtilizationRates(handle))
        memory = _once(lambda: nv.nvmlDeviceGetMemoryInfo(handle))
        field(m.GPU_UTIL, lambda: util().gpu / 100.0)
        field(m.GPU_MEM_UTIL, lambda: util().memory / 100.0)
        field(m.GPU_MEM_USED, lambda: memory().used)
        field(m.GPU_MEM_TOTAL, lambda: memory().total)
        field(m.GPU_TEMP, lambda: nv.nvmlDeviceGetTemperature(handle, nv.NVML_TEMPERATURE_GPU))
        field(m.GPU_POWER, lambda: nv.nvmlDeviceGetPowerUsage(handle) / 1000.0)
        field(m.GPU_POWER_LIMIT, lambda: nv.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0)
        field(m.GPU_ENERGY, lambda: nv.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0)
        field(m.GPU_FAN, lambda: nv.nvmlDeviceGetFanSpeed(handle) / 100.0)
        field(m.GPU_MIG, lambda: nv.nvmlDeviceGetMigMode(handle)[0])
        for clock, domain in (("sm", nv.NVML_CLOCK_SM), ("memory", nv.NVML_CLOCK_MEM)):
            field(m.GPU_CLOCK, _call(nv.nvmlDeviceGetClockInfo, handle, domain, scale=1e6),
                  (clock,))
        for kind, error in (("corrected", nv.NVML_MEMORY_ERROR_TYPE_CORRECTED),
                            ("uncorrected", nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED)):
            field(m.GPU_ECC, _call(nv.nvmlDeviceGetTotalEccErrors, handle, error,
                                   nv.NVML_VOLATILE_ECC), (kind,))
        # NVML reports PCIe throughput in KiB/s.
        field(m.GPU_PCIE_RX, _call(nv.nvmlDeviceGetPcieThroughput, handle,
                                   nv.NVML_PCIE_UTIL_RX_BYTES, scale=1024.0))
        field(m.GPU_PCIE_TX, _call(nv.nvmlDeviceGetPcieThroughput, handle,
                                   nv.NVML_PCIE_UTIL_TX_BYTES, scale=1024.0))
        readings += self._throttle(handle, gpu) + self._processes(handle, gpu, by_pid)
        return readings

    def _throttle(self, handle: Any, gpu: tuple[str, ...]) -> list[Reading]:
        nv = self._nvml
        assert nv is not None
        # Renamed "clocks event reasons" in newer drivers; the bits are the same.
        read = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
            nv.nvmlDeviceGetCurrentClocksThrottleReasons
        try:
            mask = int(read(handle))
        except (nv.NVMLError_NotSupported, nv.NVMLError_FunctionNotFound):
            return []
        return [(m.GPU_THROTTLE, gpu + (reason,), 1.0 if mask & bit else 0.0)
                for bit, reason in THROTTLE_REASONS.items()]

    def _processes(self, handle: Any, gpu: tuple[str, ...], by_pid: dict[int, float]
                   ) -> list[Reading]:
        nv = self._nvml
        assert nv is not None
        try:
            running = nv.nvmlDeviceGetComputeRunningProcesses(handle)
        except nv.NVMLError_NotSupported:
            return []
        readings: list[Reading] = []
        for proc in running:
            used = getattr(proc, "usedGpuMemory", None)
            if used is None:  # NVML withholds it (no permission, or MIG without privileges)
                continue
            by_pid[proc.pid] = by_pid.get(proc.pid, 0.0) + float(used)
            readings.append((m.GPU_PROC_MEM, gpu + (str(proc.pid), self._name(proc.pid)),
                             float(used)))
        return readings

    def _name(self, pid: int) -> str:
        if pid not in self._names:
            try:
                self._names[pid] = psutil.Process(pid).name()
            except psutil.Error:
                return ""  # in another pid namespace, or gone: the pid still tells
        return self._names[pid]

    def _identify(self, index: int, handle: Any) -> tuple[str, ...]:
        nv = self._nvml
        assert nv is not None
        ident = (str(index), _str(nv.nvmlDeviceGetUUID(handle)), _str(nv.nvmlDeviceGetName(handle)),
                 _str(nv.nvmlSystemGetDriverVersion()), _cuda_version(nv))
        self._identity[index] = ident
        return ident

    def _shutdown(self) -> None:
        if self._initialised and self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass  # NVML is already in a bad state; the next init starts afresh
        self._initialised = False

    def close(self) -> None:
        self._shutdown()


def _call(fn: Callable[..., Any], *args: Any, scale: float = 1.0) -> Callable[[], float]:
    return lambda: float(fn(*args)) * scale


def _once(read: Callable[[], Any]) -> Callable[[], Any]:
    """One NVML call shared by several fields (utilisation gives gpu and memory)."""
    box: list[Any] = []

    def get() -> Any:
        if not box:
            box.append(read())
        return box[0]

    return get


def _is_lost(nv: ModuleType, exc: Exception) -> bool:
    lost = tuple(getattr(nv, n) for n in ("NVMLError_GpuIsLost", "NVMLError_Unknown",
                                          "NVMLError_Uninitialized") if hasattr(nv, n))
    return isinstance(exc, lost)


def _str(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _cuda_version(nv: ModuleType) -> str:
    try:
        version = int(nv.nvmlSystemGetCudaDriverVersion())
    except nv.NVMLError:
        return ""
    return f"{version // 1000}.{version % 1000 // 10}"
