"""A stand-in for the ``pynvml`` module, at its boundary: the real module's exception classes
and constants, simulated devices behind the same function names and return shapes.

The tests script per-field NotSupported answers, lost GPUs and missing drivers with it, and
``llmmon run --demo`` uses ``ScriptedNVML`` when the machine has no NVIDIA driver, so every
GPU panel of the dashboards has data to show."""

from __future__ import annotations

import math
import time
import types
from dataclasses import dataclass, field
from typing import Any

import pynvml as real


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
    unsupported: set[str] = field(default_factory=set)  # function names answering NotSupported
    lost: bool = False


class FakeNVML:
    def __init__(self, gpus: list[FakeGPU], *, library: bool = True, driver: bool = True) -> None:
        self.gpus = gpus
        self.library, self.driver = library, driver
        self.initialised = False
        self.calls: list[tuple[str, int]] = []  # (function, GPU index) of every device call
        self.module = self._build()

    def _raise(self, code: int) -> None:
        raise real.NVMLError(code)

    def _gpu(self, fn: str, handle: int) -> FakeGPU:
        self.calls.append((fn, handle))
        if not self.initialised:
            self._raise(real.NVML_ERROR_UNINITIALIZED)
        gpu = self.gpus[handle]
        if gpu.lost:
            self._raise(real.NVML_ERROR_GPU_IS_LOST)
        if fn in gpu.unsupported:
            self._raise(real.NVML_ERROR_NOT_SUPPORTED)
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
            self.initialised = True

        def shutdown() -> None:
            self.initialised = False

        def getter(fn: str, read: Any) -> Any:
            return lambda handle, *args: read(self._gpu(fn, handle))

        mod.nvmlInit = init  # type: ignore[attr-defined]
        mod.nvmlShutdown = shutdown  # type: ignore[attr-defined]
        mod.nvmlDeviceGetCount = lambda: len(self.gpus)  # type: ignore[attr-defined]
        mod.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
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
        }
        with_arg = {
            "nvmlDeviceGetClockInfo": lambda g, d: {real.NVML_CLOCK_SM: g.sm_mhz,
                                                    real.NVML_CLOCK_MEM: g.mem_mhz}[d],
            "nvmlDeviceGetTotalEccErrors": lambda g, kind, counter: g.ecc[kind],
            "nvmlDeviceGetPcieThroughput": lambda g, d: g.pcie_kib[d],
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
                                  processes=[(pid, 6 << 30) for pid in pids or []])
                          for i in range(gpus)])
        self._start = time.monotonic()
        inner: Any = self.module.nvmlDeviceGetCount

        def device_count() -> int:  # called once per sampler tick: move the readings along
            self._tick()
            return int(inner())

        self.module.nvmlDeviceGetCount = device_count  # type: ignore[attr-defined]

    def _tick(self) -> None:
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
