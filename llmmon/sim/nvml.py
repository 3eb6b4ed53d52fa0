"""A stand-in for the ``pynvml`` module, at its boundary: the real module's exception classes
and constants, simulated devices behind the same function names and return shapes.

The tests script per-field NotSupported answers, lost GPUs and missing drivers with it, and
``llmmon run --demo`` uses ``ScriptedNVML`` when the machine has no NVIDIA driver, so every
GPU panel of the dashboards has data to show."""

from __future__ import annotations

import math
import queue
import time
import types
from dataclasses import dataclass, field
from typing import Any

import pynvml as real

from llmmon.sim.nvml_extra import device_handle, handle_index, install


@dataclass
class FakeGPU:
    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    util: int = 42
    mem_util: int = 17
    mem_used: int = 10 << 30
    mem_total: int = 80 << 30
    temperature: int = 55
    power_mw: int = 250_000
    power_limit_mw: int = 700_000
    energy_mj: int = 123_456_789
    sm_mhz: int = 1980
    mem_mhz: int = 2619
    fan_percent: int = 30
    throttle_mask: int = 0x4 | 0x20  # sw_power_cap and sw_thermal_slowdown
    ecc: tuple[int, int] = (3, 0)  # corrected, uncorrected
    pcie_kib: tuple[int, int] = (1000, 2000)  # tx, rx KiB/s
    mig: tuple[int, int] = (0, 0)  # current, pending
    processes: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, bytes)
    # (pid, timestamp µs, SM %, memory %): nvmlDeviceGetProcessUtilization's samples
    process_samples: list[tuple[int, int, int, int]] = field(default_factory=list)
    violation_ns: dict[int, int] = field(default_factory=dict)  # NVML_PERF_POLICY_* -> ns
    retired_pages: dict[int, int] | None = None  # cause -> pages; None: not supported
    remapped_rows: tuple[int, int, int, int] = (0, 0, 0, 0)  # corr, unc, pending, failed
    gpm: bool = False  # GPU Performance Monitoring (Hopper and later)
    gpm_metrics: dict[int, float] = field(default_factory=dict)  # NVML_GPM_METRIC_* -> value
    gpm_instances: dict[int, dict[int, float]] = field(default_factory=dict)  # MIG GI -> same
    unsupported: set[str] = field(default_factory=set)  # function names answering NotSupported
    errors: dict[str, int] = field(default_factory=dict)  # function name -> NVML error code
    lost: bool = False


class FakeNVML:
    def __init__(self, gpus: list[FakeGPU], *, library: bool = True, driver: bool = True) -> None:
        self.gpus = gpus
        self.library, self.driver = library, driver
        self.initialised = False
        self._inits = 0
        self.calls: list[tuple[str, int]] = []  # (function, GPU index) of every device call
        self.xid_queue: queue.Queue[tuple[int, int]]  # put (GPU index, XID) to raise an event
        self.module = self._build()
        install(self, self.module)

    def _raise(self, code: int) -> None:
        raise real.NVMLError(code)

    def _gpu(self, fn: str, handle: Any) -> FakeGPU:
        index = handle_index(handle)
        self.calls.append((fn, index))
        if not self.initialised:
            self._raise(real.NVML_ERROR_UNINITIALIZED)
        gpu = self.gpus[index]
        if gpu.lost:
            self._raise(real.NVML_ERROR_GPU_IS_LOST)
        if fn in gpu.unsupported:
            self._raise(real.NVML_ERROR_NOT_SUPPORTED)
        if fn in gpu.errors:
            self._raise(gpu.errors[fn])
        return gpu

    def _build(self) -> types.ModuleType:
        mod = types.ModuleType("pynvml")
        for name in dir(real):
            if name.startswith(("NVMLError", "NVML_")):
                setattr(mod, name, getattr(real, name))

        def init() -> None:
            if not self.library:
                self._raise(real.NVML_ERROR_LIBRARY_NOT_FOUND)
            if not self.driver:
                self._raise(real.NVML_ERROR_DRIVER_NOT_LOADED)
            self._inits += 1  # NVML counts its inits: each shutdown undoes one
            self.initialised = True

        def shutdown() -> None:
            self._inits = max(0, self._inits - 1)
            self.initialised = self._inits > 0

        def getter(fn: str, read: Any) -> Any:
            return lambda handle, *args: read(self._gpu(fn, handle))

        mod.nvmlInit = init  # type: ignore[attr-defined]
        mod.nvmlShutdown = shutdown  # type: ignore[attr-defined]
        mod.nvmlDeviceGetCount = lambda: len(self.gpus)  # type: ignore[attr-defined]
        mod.nvmlDeviceGetHandleByIndex = device_handle  # type: ignore[attr-defined]
        mod.nvmlSystemGetDriverVersion = lambda: "550.54.15"  # type: ignore[attr-defined]
        mod.nvmlSystemGetCudaDriverVersion = lambda: 12040  # type: ignore[attr-defined]
        fns = {
            "nvmlDeviceGetUUID": lambda g: g.uuid,
            "nvmlDeviceGetName": lambda g: g.name,
            "nvmlDeviceGetUtilizationRates": lambda g: real.c_nvmlUtilization_t(g.util, g.mem_util),
            "nvmlDeviceGetMemoryInfo": lambda g: types.SimpleNamespace(
                used=g.mem_used, total=g.mem_total, free=g.mem_total - g.mem_used),
            "nvmlDeviceGetTemperature": lambda g: g.temperature,
            "nvmlDeviceGetPowerUsage": lambda g: g.power_mw,
            "nvmlDeviceGetEnforcedPowerLimit": lambda g: g.power_limit_mw,
            "nvmlDeviceGetTotalEnergyConsumption": lambda g: g.energy_mj,
            "nvmlDeviceGetFanSpeed": lambda g: g.fan_percent,
            "nvmlDeviceGetMigMode": lambda g: list(g.mig),
            "nvmlDeviceGetCurrentClocksEventReasons": lambda g: g.throttle_mask,
            "nvmlDeviceGetComputeRunningProcesses": lambda g: [
                types.SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in g.processes],
            "nvmlDeviceGetRemappedRows": lambda g: g.remapped_rows,
        }
        with_arg = {
            "nvmlDeviceGetClockInfo": lambda g, d: {real.NVML_CLOCK_SM: g.sm_mhz,
                                                    real.NVML_CLOCK_MEM: g.mem_mhz}[d],
            "nvmlDeviceGetTotalEccErrors": lambda g, kind, counter: g.ecc[kind],
            "nvmlDeviceGetPcieThroughput": lambda g, d: g.pcie_kib[d],
            "nvmlDeviceGetViolationStatus": lambda g, policy: real.c_nvmlViolationTime_t(
                0, g.violation_ns[policy]) if policy in g.violation_ns
            else self._raise(real.NVML_ERROR_NOT_SUPPORTED),
            "nvmlDeviceGetRetiredPages": lambda g, cause: [0x1000 * i for i in range(
                g.retired_pages.get(cause, 0))] if g.retired_pages is not None
            else self._raise(real.NVML_ERROR_NOT_SUPPORTED),
        }
        for fn, read2 in with_arg.items():
            setattr(mod, fn, self._getter2(fn, read2))
        for fn, read in fns.items():
            setattr(mod, fn, getter(fn, read))
        return mod

    def _getter2(self, fn: str, read: Any) -> Any:
        return lambda handle, *args: read(self._gpu(fn, handle), *args)


class ScriptedNVML(FakeNVML):
    """GPUs whose readings drift with time (a slow sine per GPU), for the demo."""

    def __init__(self, gpus: int = 2, pids: list[int] | None = None) -> None:
        super().__init__([FakeGPU(uuid=f"GPU-5e1f0000-0000-4000-8000-00000000000{i}",
                                  processes=[(pid, 6 << 30) for pid in pids or []], gpm=True,
                                  violation_ns={real.NVML_PERF_POLICY_POWER: 0,
                                                real.NVML_PERF_POLICY_THERMAL: 0},
                                  retired_pages={})
                          for i in range(gpus)])
        self._pids = pids or []
        if gpus > 1:  # the second GPU is split in two MIG instances
            self.gpus[1].mig = (1, 1)
            self.gpus[1].gpm_instances = {1: {}, 2: {}}
        self._ticks = 0
        self._start = time.monotonic()
        inner: Any = self.module.nvmlDeviceGetCount

        def device_count() -> int:  # called once per sampler tick: move the readings along
            self._tick()
            return int(inner())

        self.module.nvmlDeviceGetCount = device_count  # type: ignore[attr-defined]

    def _tick(self) -> None:
        self._ticks += 1
        # One application-level XID at the third sample (the first calls this twice), after
        # Prometheus has seen its counter at 0, so the XID panel has a line.
        if self._ticks == 4:
            self.xid_queue.put((0, 13))
        t = time.monotonic() - self._start
        for i, gpu in enumerate(self.gpus):
            wave = (math.sin(t / 60 + i) + 1) / 2  # 0..1 over about six minutes
            gpu.util = int(40 + 55 * wave)
            gpu.mem_util = int(20 + 40 * wave)
            gpu.mem_used = int((30 + 40 * wave) * (1 << 30))
            gpu.temperature = int(45 + 35 * wave)
            gpu.power_mw = int(150_000 + 500_000 * wave)
            gpu.energy_mj += int(gpu.power_mw * 5)  # about a 5 s tick's worth
            gpu.sm_mhz = int(1980 - 400 * wave)
            gpu.throttle_mask = 0x4 if wave > 0.8 else 0
            gpu.fan_percent = int(30 + 60 * wave)
            if gpu.throttle_mask:  # about a 5 s tick spent power-capped
                gpu.violation_ns[real.NVML_PERF_POLICY_POWER] += 5_000_000_000
            # SM activity trails "utilisation": kernels run all the time, not on every SM.
            gpu.gpm_metrics = {
                real.NVML_GPM_METRIC_SM_UTIL: 20 + 70 * wave,
                real.NVML_GPM_METRIC_SM_OCCUPANCY: 10 + 40 * wave,
                real.NVML_GPM_METRIC_ANY_TENSOR_UTIL: 10 + 60 * wave,
                real.NVML_GPM_METRIC_DRAM_BW_UTIL: 15 + 50 * wave,
                real.NVML_GPM_METRIC_PCIE_TX_PER_SEC: 50 + 400 * wave,
                real.NVML_GPM_METRIC_PCIE_RX_PER_SEC: 80 + 600 * wave,
                real.NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC: 1000 * wave,
                real.NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC: 1200 * wave,
            }
            for gi, metrics in gpu.gpm_instances.items():  # the instances share the work
                metrics[real.NVML_GPM_METRIC_SM_UTIL] = (20 + 70 * wave) * (0.5 + 0.3 * gi)
            now_us = int(time.time() * 1e6)
            gpu.process_samples = [(pid, now_us, int(30 + 60 * wave), int(20 + 30 * wave))
                                   for pid in self._pids]
