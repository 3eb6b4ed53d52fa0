"""One GPU's readings, each NVML call on its own: an error on one field (NotSupported,
NoPermission, FunctionNotFound, Unknown, ...) drops that one series for that GPU, while an
error saying the GPU itself is gone propagates, and the sampler marks the GPU down."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmmon.metrics.family import Family, Reading
from llmmon.samplers.gpu_families import (
    GPU_CLOCK,
    GPU_ECC,
    GPU_ENERGY,
    GPU_FAN,
    GPU_MEM_TOTAL,
    GPU_MEM_USED,
    GPU_MEM_UTIL,
    GPU_MIG,
    GPU_PCIE_RX,
    GPU_PCIE_TX,
    GPU_POWER,
    GPU_POWER_LIMIT,
    GPU_REMAP_FAILED,
    GPU_REMAP_PENDING,
    GPU_REMAPPED_ROWS,
    GPU_RETIRED_PAGES,
    GPU_TEMP,
    GPU_THROTTLE,
    GPU_UTIL,
    GPU_VIOLATION,
)
from llmmon.samplers.nvml import once

# NVML's clock event ("throttle") reason bits, as the `reason` label.
THROTTLE_REASONS = {
    0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap",
    0x8: "hw_slowdown", 0x10: "sync_boost", 0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown", 0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
# nvmlDeviceGetViolationStatus's policies, as the `policy` label.
VIOLATION_POLICIES = {
    "power": "NVML_PERF_POLICY_POWER", "thermal": "NVML_PERF_POLICY_THERMAL",
    "sync_boost": "NVML_PERF_POLICY_SYNC_BOOST", "board_limit": "NVML_PERF_POLICY_BOARD_LIMIT",
    "low_utilization": "NVML_PERF_POLICY_LOW_UTILIZATION",
    "reliability": "NVML_PERF_POLICY_RELIABILITY",
    "total_app_clocks": "NVML_PERF_POLICY_TOTAL_APP_CLOCKS",
    "total_base_clocks": "NVML_PERF_POLICY_TOTAL_BASE_CLOCKS",
}
RETIREMENT_CAUSES = {
    "multiple_single_bit_ecc": "NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS",
    "double_bit_ecc": "NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR",
}

FieldError = Callable[[int, str, Exception], None]  # (GPU index, field, error); may re-raise


class Fields:
    """Collects one GPU's readings."""

    def __init__(self, nvml: Any, index: int, gpu: tuple[str, ...], on_error: FieldError
                 ) -> None:
        self.nv, self.index, self.gpu, self._on_error = nvml, index, gpu, on_error
        self.readings: list[Reading] = []

    def add(self, family: Family, read: Callable[[], Any], extra: tuple[str, ...] = ()) -> None:
        try:
            value = float(read())
        except self.nv.NVMLError as exc:
            self._on_error(self.index, family.name, exc)
            return
        self.readings.append((family, self.gpu + extra, value))

    def each(self, family: Family, read: Callable[[], Any],
             values: Callable[[Any], list[tuple[tuple[str, ...], float]]]) -> None:
        """Several series from one call (``values`` maps its answer to label values)."""
        try:
            answer = read()
        except self.nv.NVMLError as exc:
            self._on_error(self.index, family.name, exc)
            return
        self.readings += [(family, self.gpu + extra, v) for extra, v in values(answer)]


def _call(read: Callable[[Any], Any], arg: Any) -> Callable[[], Any]:
    """``read(arg)`` for later: a lambda in a loop would see the loop's last value."""
    return lambda: read(arg)


def read_device(fields: Fields, handle: Any, legacy_pcie: bool) -> None:
    """Utilisation, memory, sensors, clocks, ECC, PCIe (unless GPM measures it), throttle
    reasons, violation time, retired pages and remapped rows."""
    nv, add = fields.nv, fields.add
    util = once(lambda: nv.nvmlDeviceGetUtilizationRates(handle))
    memory = once(lambda: nv.nvmlDeviceGetMemoryInfo(handle))
    add(GPU_UTIL, lambda: util().gpu / 100.0)
    add(GPU_MEM_UTIL, lambda: util().memory / 100.0)
    add(GPU_MEM_USED, lambda: memory().used)
    add(GPU_MEM_TOTAL, lambda: memory().total)
    add(GPU_TEMP, lambda: nv.nvmlDeviceGetTemperature(handle, nv.NVML_TEMPERATURE_GPU))
    add(GPU_POWER, lambda: nv.nvmlDeviceGetPowerUsage(handle) / 1000.0)
    add(GPU_POWER_LIMIT, lambda: nv.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0)
    add(GPU_ENERGY, lambda: nv.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0)
    add(GPU_FAN, lambda: nv.nvmlDeviceGetFanSpeed(handle) / 100.0)
    add(GPU_MIG, lambda: nv.nvmlDeviceGetMigMode(handle)[0])
    for clock, domain in (("sm", nv.NVML_CLOCK_SM), ("memory", nv.NVML_CLOCK_MEM)):
        add(GPU_CLOCK, _call(lambda d: nv.nvmlDeviceGetClockInfo(handle, d) * 1e6, domain),
            (clock,))
    for kind, error in (("corrected", nv.NVML_MEMORY_ERROR_TYPE_CORRECTED),
                        ("uncorrected", nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED)):
        add(GPU_ECC, _call(lambda e: nv.nvmlDeviceGetTotalEccErrors(
            handle, e, nv.NVML_VOLATILE_ECC), error), (kind,))
    if legacy_pcie:
        # KiB/s over a 20 ms window NVML waits out inside the call; GPM replaces it.
        add(GPU_PCIE_RX, lambda: nv.nvmlDeviceGetPcieThroughput(
            handle, nv.NVML_PCIE_UTIL_RX_BYTES) * 1024.0)
        add(GPU_PCIE_TX, lambda: nv.nvmlDeviceGetPcieThroughput(
            handle, nv.NVML_PCIE_UTIL_TX_BYTES) * 1024.0)
    _throttle(fields, handle)
    _health(fields, handle)


def _throttle(fields: Fields, handle: Any) -> None:
    nv = fields.nv
    # Renamed "clocks event reasons" in newer drivers; the bits are the same.
    read = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
        nv.nvmlDeviceGetCurrentClocksThrottleReasons
    fields.each(GPU_THROTTLE, lambda: int(read(handle)), lambda mask: [
        ((reason,), 1.0 if mask & bit else 0.0) for bit, reason in THROTTLE_REASONS.items()])


def _health(fields: Fields, handle: Any) -> None:
    nv, add = fields.nv, fields.add
    for policy, const in VIOLATION_POLICIES.items():
        if hasattr(nv, const):  # ns of violation since the driver loaded
            add(GPU_VIOLATION, _call(lambda c: nv.nvmlDeviceGetViolationStatus(
                handle, c).violationTime / 1e9, getattr(nv, const)), (policy,))
    for cause, const in RETIREMENT_CAUSES.items():
        add(GPU_RETIRED_PAGES, _call(lambda c: len(nv.nvmlDeviceGetRetiredPages(handle, c)),
                                     getattr(nv, const)), (cause,))
    rows = once(lambda: nv.nvmlDeviceGetRemappedRows(handle))  # corr, unc, pending, failed
    add(GPU_REMAPPED_ROWS, lambda: rows()[0], ("corrected",))
    add(GPU_REMAPPED_ROWS, lambda: rows()[1], ("uncorrected",))
    add(GPU_REMAP_PENDING, lambda: 1.0 if rows()[2] else 0.0)
    add(GPU_REMAP_FAILED, lambda: 1.0 if rows()[3] else 0.0)
