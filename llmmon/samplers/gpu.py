"""NVIDIA GPUs through NVML (nvidia-ml-py, imported as ``pynvml``).

A field a GPU does not support is left out for that GPU, never exported as 0. A GPU that
is lost reports ``llmmon_gpu_up 0`` and nothing else until NVML answers for it again.
Without NVML or a driver the sampler has no data, which is not a failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from llmmon import metrics as m
from llmmon.metrics import Family, Reading

log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0


def _import_nvml() -> ModuleType | None:
    try:
        import pynvml
    except ImportError:
        return None
    module: ModuleType = pynvml
    return module


class GPUSampler:
    name = "gpu"

    def __init__(self, nvml: ModuleType | None = None, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self._nvml = nvml if nvml is not None else _import_nvml()
        self._clock = clock
        self._initialised = False
        self._absent_logged = False
        self._retry_at = 0.0
        self._backoff = 5.0
        self._identity: dict[int, tuple[str, ...]] = {}

    def sample(self) -> list[Reading] | None:
        if not self._ensure_init():
            return None
        nv = self._nvml
        assert nv is not None
        readings: list[Reading] = []
        lost = False
        for index in range(nv.nvmlDeviceGetCount()):
            try:
                readings += self._sample_gpu(index)
            except nv.NVMLError as exc:
                if not _is_lost(nv, exc):
                    raise
                log.warning("GPU %d is lost (%s); re-initialising NVML", index, type(exc).__name__)
                readings.append((m.GPU_UP, (str(index),), 0.0))
                self._identity.pop(index, None)
                lost = True
        if lost:
            self._shutdown()  # re-initialise on a later tick, with backoff
        return readings

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

    def _sample_gpu(self, index: int) -> list[Reading]:
        nv = self._nvml
        assert nv is not None
        handle = nv.nvmlDeviceGetHandleByIndex(index)
        ident = self._identity.get(index) or self._identify(index, handle)
        gpu = ident[:2]
        readings: list[Reading] = [(m.GPU_UP, (str(index),), 1.0), (m.GPU_INFO, ident, 1.0)]

        def field(family: Family, read: Callable[[], float]) -> None:
            try:
                readings.append((family, gpu, float(read())))
            except nv.NVMLError_NotSupported:
                pass  # this GPU has no such sensor: leave the series out

        util: Any = _cached(lambda: nv.nvmlDeviceGetUtilizationRates(handle))
        memory: Any = _cached(lambda: nv.nvmlDeviceGetMemoryInfo(handle))
        field(m.GPU_UTIL, lambda: util().gpu / 100.0)
        field(m.GPU_MEM_UTIL, lambda: util().memory / 100.0)
        field(m.GPU_MEM_USED, lambda: memory().used)
        field(m.GPU_MEM_TOTAL, lambda: memory().total)
        field(m.GPU_TEMP, lambda: nv.nvmlDeviceGetTemperature(handle, nv.NVML_TEMPERATURE_GPU))
        field(m.GPU_POWER, lambda: nv.nvmlDeviceGetPowerUsage(handle) / 1000.0)
        field(m.GPU_POWER_LIMIT, lambda: nv.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0)
        return readings

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
        self._retry_at = self._clock() + self._backoff

    def close(self) -> None:
        self._shutdown()


def _cached(read: Callable[[], Any]) -> Callable[[], Any]:
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
