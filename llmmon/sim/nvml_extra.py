"""The fake NVML's newer surface: GPM samples and metrics, MIG GPU instances, XID events,
process utilisation. Built on nvidia-ml-py's own ctypes structures (``c_nvmlGpmMetricsGet_t``,
``c_nvmlEventData_t``, ``c_nvmlProcessUtilizationSample_t``), so field names and types are
the real library's."""

from __future__ import annotations

import ctypes
import queue
import types
from typing import Any

import pynvml as real


def device_handle(index: int) -> Any:
    """The fake's device handle: a real c_nvmlDevice_t, pointing nowhere, at index + 1."""
    return ctypes.cast(ctypes.c_void_p(index + 1), real.c_nvmlDevice_t)


def handle_index(handle: Any) -> int:
    return int(ctypes.cast(handle, ctypes.c_void_p).value or 0) - 1


def install(fake: Any, mod: types.ModuleType) -> None:
    """Add these functions to ``mod``, the module of ``fake`` (a ``nvml.FakeNVML``: its
    ``_gpu`` checks a device call, its ``_raise`` raises NVML's error for a code)."""
    samples: dict[int, tuple[Any, int, int | None, dict[int, float]]] = {}  # by address
    events: queue.Queue[tuple[int, int]] = queue.Queue()  # (GPU index, XID)
    registered: set[int] = set()
    fake.xid_queue = events

    def alloc() -> Any:
        buf = ctypes.create_string_buffer(8)
        pointer = ctypes.cast(buf, real.c_nvmlGpmSample_t)
        samples[ctypes.addressof(buf)] = (buf, -1, None, {})
        return pointer

    def address(sample: Any) -> int:
        value = ctypes.cast(sample, ctypes.c_void_p).value
        if value not in samples:
            fake._raise(real.NVML_ERROR_INVALID_ARGUMENT)
        return int(value or 0)

    def take(handle: Any, instance: int | None, sample: Any) -> Any:
        gpu = fake._gpu("nvmlGpmSampleGet", handle)
        if not gpu.gpm:
            fake._raise(real.NVML_ERROR_NOT_SUPPORTED)
        values = gpu.gpm_metrics if instance is None else gpu.gpm_instances[instance]
        at = address(sample)
        samples[at] = (samples[at][0], handle_index(handle), instance, dict(values))
        return sample

    def metrics_get(request: Any) -> Any:
        if request.version != real.NVML_GPM_METRICS_GET_VERSION:
            fake._raise(real.NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
        _, gpu1, gi1, _ = samples[address(request.sample1)]
        _, gpu2, gi2, values = samples[address(request.sample2)]
        if (gpu1, gi1) != (gpu2, gi2) or gpu1 < 0:
            fake._raise(real.NVML_ERROR_INVALID_ARGUMENT)
        for i in range(request.numMetrics):
            metric = request.metrics[i]
            if metric.metricId in values:
                metric.nvmlReturn, metric.value = real.NVML_SUCCESS, values[metric.metricId]
            else:
                metric.nvmlReturn = real.NVML_ERROR_NOT_SUPPORTED
        return request

    def free(sample: Any) -> None:
        samples.pop(address(sample))

    def support(handle: Any) -> Any:
        gpu = fake._gpu("nvmlGpmQueryDeviceSupport", handle)
        return real.c_nvmlGpmSupport_t(real.NVML_GPM_SUPPORT_VERSION, int(gpu.gpm))

    def mig_handle(handle: Any, i: int) -> Any:
        gpu = fake._gpu("nvmlDeviceGetMigDeviceHandleByIndex", handle)
        instances = sorted(gpu.gpm_instances)
        if i >= len(instances):
            fake._raise(real.NVML_ERROR_NOT_FOUND)
        return ("mig", instances[i])

    def register(handle: Any, kinds: int, event_set: Any) -> None:
        fake._gpu("nvmlDeviceRegisterEvents", handle)
        registered.add(handle_index(handle))

    def wait(event_set: Any, timeout_ms: int) -> Any:
        while True:
            try:
                # At most 50 ms, whatever was asked: an early Timeout is harmless to the
                # caller, and a sampler that closes is not kept waiting by its XID thread.
                index, xid = events.get(timeout=min(timeout_ms, 50) / 1000)
            except queue.Empty:
                fake._raise(real.NVML_ERROR_TIMEOUT)
            if index in registered:
                break
        data = real.c_nvmlEventData_t()
        data.device = device_handle(index)
        data.eventType, data.eventData = real.nvmlEventTypeXidCriticalError, xid
        return data

    def index_of(handle: Any) -> int:
        fake._gpu("nvmlDeviceGetIndex", handle)
        return handle_index(handle)

    def process_utilization(handle: Any, last_seen: int) -> list[Any]:
        gpu = fake._gpu("nvmlDeviceGetProcessUtilization", handle)
        found = [real.c_nvmlProcessUtilizationSample_t(pid, at, sm, mem, 0, 0)
                 for pid, at, sm, mem in gpu.process_samples if at > last_seen]
        if not found:
            fake._raise(real.NVML_ERROR_NOT_FOUND)
        return found

    functions: dict[str, Any] = {
        "nvmlGpmSampleAlloc": alloc,
        "nvmlGpmSampleFree": free,
        "nvmlGpmSampleGet": lambda handle, sample: take(handle, None, sample),
        "nvmlGpmMigSampleGet": take,
        "nvmlGpmMetricsGet": metrics_get,
        "nvmlGpmQueryDeviceSupport": support,
        "nvmlDeviceGetMaxMigDeviceCount": lambda handle: 7,
        "nvmlDeviceGetMigDeviceHandleByIndex": mig_handle,
        "nvmlDeviceGetGpuInstanceId": lambda mig: mig[1],
        "nvmlDeviceGetIndex": index_of,
        "nvmlEventSetCreate": lambda: object(),
        "nvmlEventSetFree": lambda event_set: None,
        "nvmlDeviceRegisterEvents": register,
        "nvmlEventSetWait": wait,
        "nvmlDeviceGetProcessUtilization": process_utilization,
    }
    for name in ("c_nvmlGpmMetricsGet_t", "nvmlEventTypeXidCriticalError"):
        setattr(mod, name, getattr(real, name))
    for name, fn in functions.items():
        setattr(mod, name, fn)
