"""NVIDIA GPUs through NVML (nvidia-ml-py, imported as ``pynvml``).

A field a GPU cannot give (not supported, no permission, any error but the GPU being gone)
is left out for that GPU, never exported as 0. A GPU that is gone reports
``llmmon_gpu_up 0`` and nothing else; NVML is then re-initialised with backoff while the
other GPUs go on reporting. Without NVML or a driver the sampler has no data, which is not a
failure, and says so once in the log. Hopper and later add GPM metrics (``gpu_gpm.py``);
critical XID events are waited on in a thread of their own (``gpu_events.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Annotated, Any, Literal

from pydantic import PlainValidator

from llmmon.config import SamplerConfig
from llmmon.metrics.family import Reading
from llmmon.samplers.gpu_events import XidWatcher
from llmmon.samplers.gpu_families import (
    FAMILIES,
    GPU_INFO,
    GPU_NVLINK_RX,
    GPU_NVLINK_TX,
    GPU_PCIE_RX,
    GPU_PCIE_TX,
    GPU_UP,
    GPU_XID,
    NVML_CALLS,
    NVML_SECONDS,
)
from llmmon.samplers.gpu_fields import Fields, read_device
from llmmon.samplers.gpu_gpm import GPM_FAMILIES, GPMReader
from llmmon.samplers.gpu_processes import ProcessReader
from llmmon.samplers.gpu_usage import GPUUsageByPid, PidUsage
from llmmon.samplers.nvml import (
    TimedNVML,
    cuda_version,
    gpu_gone,
    gpu_unreachable,
    import_nvml,
    text,
)

__all__ = ["FAMILIES", "GPUConfig", "GPUSampler"]

log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0
# GPM's device-wide throughputs feed these families instead of their own.
_GPM_DEVICE = {"pcie_rx": GPU_PCIE_RX, "pcie_tx": GPU_PCIE_TX, "nvlink_rx": GPU_NVLINK_RX,
               "nvlink_tx": GPU_NVLINK_TX}


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


class GPUSampler:
    name = "gpu"

    def __init__(self, nvml: ModuleType | None = None, clock: Callable[[], float] = time.monotonic,
                 process_usage: GPUUsageByPid | None = None) -> None:
        raw = nvml if nvml is not None else import_nvml()
        self._nvml: Any = TimedNVML(raw) if raw is not None else None
        self._clock = clock
        self._process_usage = process_usage
        self._initialised = False
        self._absent_logged = False
        self._retry_at = 0.0
        self._backoff = 5.0
        self._identity: dict[int, tuple[str, ...]] = {}
        self._labels: dict[int, tuple[str, str]] = {}  # (gpu, uuid), kept when a GPU is lost
        self._lock = threading.Lock()  # a tick and close() never overlap
        self._lost: dict[int, tuple[float, float]] = {}  # index -> (retry at, backoff)
        self._dropped: set[tuple[int, str, str]] = set()  # fields already logged as missing
        self._processes = ProcessReader()
        self._gpm = GPMReader(self._nvml, self._field_error) if raw is not None else None
        # The watcher blocks in NVML for up to its bounded wait: not through the timing proxy.
        self._xid = XidWatcher(raw) if raw is not None else None

    def sample(self) -> list[Reading] | None:
        with self._lock:
            return self._sample()

    def _sample(self) -> list[Reading] | None:
        if not self._ensure_init():
            return None
        nv = self._nvml
        now = self._clock()
        if any(at <= now for at, _ in self._lost.values()) and not self._reinit():
            return None
        readings: list[Reading] = []
        usage: dict[int, PidUsage] = {}
        for index in range(nv.nvmlDeviceGetCount()):
            retry_at, backoff = self._lost.get(index, (0.0, 0.0))
            if retry_at > now:  # lost, and not yet time to look again
                readings.append((GPU_UP, (str(index),), 0.0))
                continue
            try:
                readings += self._sample_gpu(index, usage)
                self._lost.pop(index, None)
            except nv.NVMLError as exc:  # the GPU is gone (no handle, or it does not answer)
                if not backoff:
                    log.warning("GPU %d is lost (%s)", index, type(exc).__name__)
                backoff = min(backoff * 2, MAX_BACKOFF) if backoff else 5.0
                self._lost[index] = (now + backoff, backoff)
                self._forget(index)
                readings.append((GPU_UP, (str(index),), 0.0))
        if self._process_usage is not None:
            self._process_usage.replace(usage)
        return readings + self._xid_readings() + self._cost_readings()

    def _sample_gpu(self, index: int, usage: dict[int, PidUsage]) -> list[Reading]:
        """One GPU's readings; raises NVMLError only when the GPU is gone."""
        nv = self._nvml
        handle = nv.nvmlDeviceGetHandleByIndex(index)  # no handle: nothing can be read
        try:
            uuid = text(nv.nvmlDeviceGetUUID(handle))  # also: does the GPU answer at all?
        except nv.NVMLError as exc:
            if gpu_unreachable(nv, exc):
                raise
            self._field_error(index, "uuid", exc)
            uuid = ""
        ident = self._identity.get(index)
        if ident is None or ident[1] != uuid:  # first look, or renumbered after a reset
            self._forget(index)
            ident = self._identify(index, handle, uuid)
        fields = Fields(nv, index, ident[:2], self._field_error)
        fields.readings += [(GPU_UP, (str(index),), 1.0), (GPU_INFO, ident, 1.0)]
        gpm = self._gpm.read(index, handle) if self._gpm is not None else []
        read_device(fields, handle, legacy_pcie=not self._gpm_supported(index, handle))
        self._processes.read(fields, handle, usage)
        for metric, instance, value in gpm:
            if metric in _GPM_DEVICE:
                if not instance:  # device-wide: the whole GPU's only
                    fields.readings.append((_GPM_DEVICE[metric], ident[:2], value))
            else:
                fields.readings.append((GPM_FAMILIES[metric], ident[:2] + (instance,), value))
        return fields.readings

    def _gpm_supported(self, index: int, handle: Any) -> bool:
        return self._gpm is not None and self._gpm.supported(index, handle)

    def _field_error(self, index: int, what: str, exc: Exception) -> None:
        """A field that failed is left out; the GPU being gone is everyone's problem."""
        if gpu_gone(self._nvml, exc):
            raise exc
        key = (index, what, type(exc).__name__)
        if key not in self._dropped:
            self._dropped.add(key)
            log.debug("GPU %d: %s left out (%s)", index, what, type(exc).__name__)

    def _identify(self, index: int, handle: Any, uuid: str) -> tuple[str, ...]:
        nv = self._nvml
        try:
            name = text(nv.nvmlDeviceGetName(handle))
        except nv.NVMLError as exc:
            self._field_error(index, "name", exc)
            name = ""
        try:
            driver = text(nv.nvmlSystemGetDriverVersion())
        except nv.NVMLError:
            driver = ""
        ident = (str(index), uuid, name, driver, cuda_version(nv))
        if uuid:  # an unreadable UUID is asked again next tick
            self._identity[index] = ident
            self._labels[index] = (str(index), uuid)
        return ident

    def _xid_readings(self) -> list[Reading]:
        if self._xid is None:
            return []
        # A lost GPU's XIDs too: its last one (79, fallen off the bus) matters most.
        return [(GPU_XID, self._labels[index] + (xid,), float(n))
                for (index, xid), n in self._xid.counts().items() if index in self._labels]

    def _cost_readings(self) -> list[Reading]:
        costs = dict(self._nvml.costs)
        return [r for fn, (calls, seconds) in sorted(costs.items())
                for r in ((NVML_CALLS, (fn,), float(calls)), (NVML_SECONDS, (fn,), seconds))]

    def _forget(self, index: int) -> None:
        self._identity.pop(index, None)
        self._processes.forget(index)
        if self._gpm is not None:
            self._gpm.forget(index)

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
        self._watch_xids()
        return True

    def _watch_xids(self) -> None:
        nv = self._nvml
        if self._xid is None:
            return
        handles = {}
        try:
            for index in range(nv.nvmlDeviceGetCount()):
                handles[index] = nv.nvmlDeviceGetHandleByIndex(index)
        except nv.NVMLError:
            pass  # watch the GPUs that answered
        self._xid.start(handles)

    def _log_absent(self, why: str) -> None:
        if not self._absent_logged:
            log.info("GPU sampler has no data: %s", why)
            self._absent_logged = True

    def _shutdown(self) -> None:
        if self._xid is not None:
            self._xid.stop()  # its event set dies with NVML; the counts are kept
        if self._initialised and self._nvml is not None:
            if self._gpm is not None:
                self._gpm.close()
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass  # NVML is already in a bad state; the next init starts afresh
        self._initialised = False

    def close(self) -> None:
        with self._lock:
            self._shutdown()
