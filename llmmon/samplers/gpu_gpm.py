"""GPU Performance Monitoring (Hopper and later): SM activity, SM occupancy, tensor-core
activity, DRAM bandwidth, PCIe and NVLink throughput, computed by NVML from two samples
taken an interval apart (``nvmlGpmMetricsGet``), per GPU and per MIG GPU instance.

"GPU utilisation" from ``nvmlDeviceGetUtilizationRates`` is the share of time any kernel
ran: one tiny kernel keeps it at 100 %. SM activity is the share of SMs busy, averaged
over the interval, which is what "saturated" means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmmon.metrics.family import Family
from llmmon.samplers.gpu_families import (
    GPU_DRAM_ACTIVE,
    GPU_SM_ACTIVE,
    GPU_SM_OCCUPANCY,
    GPU_TENSOR_ACTIVE,
)

# metric name (the family's key), NVML metric id name, scale to the exported unit
GPM_METRICS: tuple[tuple[str, str, float], ...] = (
    ("sm_active", "NVML_GPM_METRIC_SM_UTIL", 0.01),
    ("sm_occupancy", "NVML_GPM_METRIC_SM_OCCUPANCY", 0.01),
    ("tensor_active", "NVML_GPM_METRIC_ANY_TENSOR_UTIL", 0.01),
    ("dram_active", "NVML_GPM_METRIC_DRAM_BW_UTIL", 0.01),
    ("pcie_tx", "NVML_GPM_METRIC_PCIE_TX_PER_SEC", float(1 << 20)),  # MiB/s
    ("pcie_rx", "NVML_GPM_METRIC_PCIE_RX_PER_SEC", float(1 << 20)),
    ("nvlink_tx", "NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC", float(1 << 20)),
    ("nvlink_rx", "NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC", float(1 << 20)),
)
# The per-instance ratios; the device-wide throughputs go to the GPU's PCIe/NVLink families.
GPM_FAMILIES: dict[str, Family] = {"sm_active": GPU_SM_ACTIVE, "sm_occupancy": GPU_SM_OCCUPANCY,
                                   "tensor_active": GPU_TENSOR_ACTIVE,
                                   "dram_active": GPU_DRAM_ACTIVE}


class GPMReader:
    """Keeps the previous GPM sample of each GPU (and MIG GPU instance) and turns each new one
    into metrics over the interval since. The first tick after start, or after a GPU came
    back, has nothing to compare with and reports nothing: absent, not 0."""

    def __init__(self, nvml: Any, on_error: Callable[[int, str, Exception], None]
                 ) -> None:
        self._nv = nvml
        self._on_error = on_error  # (gpu index, what, the NVML error): a field dropped
        self._supported: dict[int, bool] = {}
        self._last: dict[tuple[int, int | None], Any] = {}  # (gpu, GPU instance) -> sample
        self._ids = [(name, getattr(nvml, attr), scale) for name, attr, scale in GPM_METRICS
                     if hasattr(nvml, attr)]

    def supported(self, index: int, handle: Any) -> bool:
        if index not in self._supported:
            nv = self._nv
            try:
                support = nv.nvmlGpmQueryDeviceSupport(handle)
                self._supported[index] = bool(support.isSupportedDevice)
            except (AttributeError, nv.NVMLError):
                self._supported[index] = False  # an older driver or library: no GPM
        return self._supported[index]

    def read(self, index: int, handle: Any) -> list[tuple[str, str, float]]:
        """(metric, GPU instance ("" for the whole GPU), value) for one GPU."""
        if not self.supported(index, handle):
            return []
        out: list[tuple[str, str, float]] = []
        instances = [None, *self._instances(index, handle)]
        for key in [k for k in self._last if k[0] == index and k[1] not in instances]:
            self._free(self._last.pop(key))  # a MIG instance that was destroyed
        for instance in instances:
            metrics = self._interval(index, handle, instance)
            label = "" if instance is None else str(instance)
            out += [(name, label, value) for name, value in metrics]
        return out

    def _instances(self, index: int, handle: Any) -> list[int]:
        """The MIG GPU instance ids of a GPU in MIG mode (none otherwise)."""
        nv = self._nv
        try:
            if nv.nvmlDeviceGetMigMode(handle)[0] != nv.NVML_DEVICE_MIG_ENABLE:
                return []
            ids = []
            for i in range(nv.nvmlDeviceGetMaxMigDeviceCount(handle)):
                try:
                    mig = nv.nvmlDeviceGetMigDeviceHandleByIndex(handle, i)
                except nv.NVMLError_NotFound:
                    continue  # an empty slot
                ids.append(int(nv.nvmlDeviceGetGpuInstanceId(mig)))
            return sorted(set(ids))
        except nv.NVMLError as exc:
            self._on_error(index, "gpm_mig", exc)
            return []

    def _interval(self, index: int, handle: Any, instance: int | None
                  ) -> list[tuple[str, float]]:
        nv = self._nv
        key = (index, instance)
        try:
            sample = nv.nvmlGpmSampleAlloc()
        except nv.NVMLError as exc:
            self._on_error(index, "gpm", exc)
            return []
        try:
            if instance is None:
                nv.nvmlGpmSampleGet(handle, sample)
            else:
                nv.nvmlGpmMigSampleGet(handle, instance, sample)
        except nv.NVMLError as exc:
            nv.nvmlGpmSampleFree(sample)
            self._on_error(index, "gpm", exc)
            return []
        previous = self._last.get(key)
        self._last[key] = sample
        if previous is None:
            return []
        try:
            return self._metrics(previous, sample, index, per_instance=instance is not None)
        finally:
            self._free(previous)

    def _metrics(self, first: Any, second: Any, index: int, per_instance: bool
                 ) -> list[tuple[str, float]]:
        nv = self._nv
        # PCIe and NVLink are the device's: asked for the whole GPU only.
        ids = [m for m in self._ids if not per_instance or m[0] in GPM_FAMILIES]
        request = nv.c_nvmlGpmMetricsGet_t()
        request.version = nv.NVML_GPM_METRICS_GET_VERSION
        request.numMetrics = len(ids)
        request.sample1, request.sample2 = first, second
        for i, (_, metric_id, _) in enumerate(ids):
            request.metrics[i].metricId = metric_id
        try:
            nv.nvmlGpmMetricsGet(request)
        except nv.NVMLError as exc:
            self._on_error(index, "gpm", exc)
            return []
        out = []
        for i, (name, _, scale) in enumerate(ids):
            metric = request.metrics[i]
            if metric.nvmlReturn == nv.NVML_SUCCESS:  # each metric says whether it worked
                out.append((name, float(metric.value) * scale))
        return out

    def forget(self, index: int) -> None:
        """Drop a GPU's samples (it was lost): the next one starts a new interval."""
        for key in [k for k in self._last if k[0] == index]:
            self._free(self._last.pop(key))
        self._supported.pop(index, None)

    def close(self) -> None:
        for key in list(self._last):
            self._free(self._last.pop(key))

    def _free(self, sample: Any) -> None:
        try:
            self._nv.nvmlGpmSampleFree(sample)
        except self._nv.NVMLError:
            pass  # NVML was shut down or the GPU is gone; the memory went with it
