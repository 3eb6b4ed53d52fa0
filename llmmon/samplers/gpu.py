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
from typing import Annotated, Any, Literal

import psutil
from pydantic import PlainValidator

from llmmon.config import SamplerConfig
from llmmon.metrics.family import Family, Reading
from llmmon.samplers.gpu_memory import GPUMemoryByPid
from llmmon.samplers.nvml import call, cuda_version, import_nvml, is_lost, once, text


def _auto_or_bool(value: object) -> Literal["auto"] | bool:
    words = {"auto": "auto", "true": True, "false": False, "on": True, "off": False}
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in words:
        return words[value.lower()]  # type: ignore[return-value]
    raise ValueError("must be auto, true or false")


class GPUConfig(SamplerConfig):
    # "auto": sample when NVML and a driver are present, stay quiet otherwise.
    enabled: Annotated[Literal["auto"] | bool, PlainValidator(_auto_or_bool)] = "auto"  # type: ignore[assignment]

    def active(self) -> bool:
        return self.enabled is not False


_GPU = ("gpu", "uuid")
GPU_UP = Family("llmmon_gpu_up", "gauge", "1 if NVML answers for this GPU, 0 if it is lost.",
                ("gpu",), group="gpu")
GPU_INFO = Family("llmmon_gpu_info", "gauge", "Always 1; GPU identity in labels.",
                  (*_GPU, "name", "driver", "cuda"), group="gpu")
GPU_UTIL = Family("llmmon_gpu_utilization_ratio", "gauge",
                  "Share of the last sample period a kernel ran (0..1).", _GPU, group="gpu")
GPU_MEM_UTIL = Family("llmmon_gpu_memory_utilization_ratio", "gauge",
                      "Share of the last sample period device memory was read or written.",
                      _GPU, group="gpu")
GPU_MEM_USED = Family("llmmon_gpu_memory_used_bytes", "gauge", "Device memory in use.", _GPU,
                      group="gpu")
GPU_MEM_TOTAL = Family("llmmon_gpu_memory_total_bytes", "gauge", "Device memory.", _GPU,
                       group="gpu")
GPU_TEMP = Family("llmmon_gpu_temperature_celsius", "gauge", "GPU core temperature.", _GPU,
                  group="gpu")
GPU_POWER = Family("llmmon_gpu_power_watts", "gauge", "Power draw.", _GPU, group="gpu")
GPU_POWER_LIMIT = Family("llmmon_gpu_power_limit_watts", "gauge", "Enforced power limit.",
                         _GPU, group="gpu")

GPU_ENERGY = Family("llmmon_gpu_energy_joules_total", "counter",
                    "Energy used since the driver loaded.", _GPU, group="gpu")
GPU_CLOCK = Family("llmmon_gpu_clock_hertz", "gauge", "Current clock, by domain.",
                   _GPU + ("clock",), group="gpu")
GPU_FAN = Family("llmmon_gpu_fan_speed_ratio", "gauge", "Fan speed as a share of its maximum.",
                 _GPU, group="gpu")
GPU_THROTTLE = Family("llmmon_gpu_throttle_active", "gauge",
                      "1 while the clocks are held down for this reason.",
                      _GPU + ("reason",), group="gpu")
GPU_ECC = Family("llmmon_gpu_ecc_errors_total", "counter",
                 "Memory ECC errors since the driver loaded.", _GPU + ("type",), group="gpu")
GPU_PCIE_RX = Family("llmmon_gpu_pcie_rx_bytes_per_second", "gauge",
                     "PCIe receive throughput over NVML's last 20 ms window.", _GPU, group="gpu")
GPU_PCIE_TX = Family("llmmon_gpu_pcie_tx_bytes_per_second", "gauge",
                     "PCIe transmit throughput over NVML's last 20 ms window.", _GPU, group="gpu")
GPU_MIG = Family("llmmon_gpu_mig_mode_enabled", "gauge", "1 if MIG mode is on.", _GPU,
                 group="gpu")
GPU_PROC_MEM = Family("llmmon_gpu_process_memory_used_bytes", "gauge",
                      "Device memory used by each process on the GPU.",
                      _GPU + ("pid", "process"), group="gpu")

FAMILIES: tuple[Family, ...] = (
    GPU_UP, GPU_INFO, GPU_UTIL, GPU_MEM_UTIL, GPU_MEM_USED, GPU_MEM_TOTAL, GPU_TEMP, GPU_POWER,
    GPU_POWER_LIMIT, GPU_ENERGY, GPU_CLOCK, GPU_FAN, GPU_THROTTLE, GPU_ECC, GPU_PCIE_RX,
    GPU_PCIE_TX, GPU_MIG, GPU_PROC_MEM,
)


log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0
# NVML's clock event ("throttle") reason bits, as the `reason` label.
THROTTLE_REASONS = {
    0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap",
    0x8: "hw_slowdown", 0x10: "sync_boost", 0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown", 0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


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
                readings.append((GPU_UP, (str(index),), 0.0))
                continue
            try:
                readings += self._sample_gpu(index, by_pid)
                self._lost.pop(index, None)
            except nv.NVMLError as exc:
                if not is_lost(nv, exc):
                    raise
                if not backoff:
                    log.warning("GPU %d is lost (%s)", index, type(exc).__name__)
                backoff = min(backoff * 2, MAX_BACKOFF) if backoff else 5.0
                self._lost[index] = (now + backoff, backoff)
                self._identity.pop(index, None)
                readings.append((GPU_UP, (str(index),), 0.0))
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
        readings: list[Reading] = [(GPU_UP, (str(index),), 1.0), (GPU_INFO, ident, 1.0)]

        def field(family: Family, read: Callable[[], Any], extra: tuple[str, ...] = ()) -> None:
            try:
                readings.append((family, gpu + extra, float(read())))
            except nv.NVMLError_NotSupported:
                pass  # this GPU has no such sensor: leave the series out

        util = once(lambda: nv.nvmlDeviceGetUtilizationRates(handle))
        memory = once(lambda: nv.nvmlDeviceGetMemoryInfo(handle))
        field(GPU_UTIL, lambda: util().gpu / 100.0)
        field(GPU_MEM_UTIL, lambda: util().memory / 100.0)
        field(GPU_MEM_USED, lambda: memory().used)
        field(GPU_MEM_TOTAL, lambda: memory().total)
        field(GPU_TEMP, lambda: nv.nvmlDeviceGetTemperature(handle, nv.NVML_TEMPERATURE_GPU))
        field(GPU_POWER, lambda: nv.nvmlDeviceGetPowerUsage(handle) / 1000.0)
        field(GPU_POWER_LIMIT, lambda: nv.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0)
        field(GPU_ENERGY, lambda: nv.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0)
        field(GPU_FAN, lambda: nv.nvmlDeviceGetFanSpeed(handle) / 100.0)
        field(GPU_MIG, lambda: nv.nvmlDeviceGetMigMode(handle)[0])
        for clock, domain in (("sm", nv.NVML_CLOCK_SM), ("memory", nv.NVML_CLOCK_MEM)):
            field(GPU_CLOCK, call(nv.nvmlDeviceGetClockInfo, handle, domain, scale=1e6),
                  (clock,))
        for kind, error in (("corrected", nv.NVML_MEMORY_ERROR_TYPE_CORRECTED),
                            ("uncorrected", nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED)):
            field(GPU_ECC, call(nv.nvmlDeviceGetTotalEccErrors, handle, error,
                                   nv.NVML_VOLATILE_ECC), (kind,))
        # NVML reports PCIe throughput in KiB/s.
        field(GPU_PCIE_RX, call(nv.nvmlDeviceGetPcieThroughput, handle,
                                   nv.NVML_PCIE_UTIL_RX_BYTES, scale=1024.0))
        field(GPU_PCIE_TX, call(nv.nvmlDeviceGetPcieThroughput, handle,
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
        return [(GPU_THROTTLE, gpu + (reason,), 1.0 if mask & bit else 0.0)
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
            readings.append((GPU_PROC_MEM, gpu + (str(proc.pid), self._name(proc.pid)),
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
        ident = (str(index), text(nv.nvmlDeviceGetUUID(handle)), text(nv.nvmlDeviceGetName(handle)),
                 text(nv.nvmlSystemGetDriverVersion()), cuda_version(nv))
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
