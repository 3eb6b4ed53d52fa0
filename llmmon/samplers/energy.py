"""GPU energy around a stretch of work (a load probe): NVML's cumulative energy counter, read
before and after, so nothing between samples is missed and no power curve is integrated.
Blocking NVML calls: run these in a worker thread."""

from __future__ import annotations

import contextlib
import logging
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)


def _module(nvml: ModuleType | None) -> Any:
    if nvml is not None:
        return nvml
    import pynvml

    return pynvml


def read_energy(nvml: ModuleType | None = None) -> dict[str, int] | None:
    """Millijoules since the driver loaded, per GPU UUID (an index can name another GPU
    after a reset); None without NVML. GPUs without the counter (before Volta) are left
    out."""
    try:
        nv = _module(nvml)
        nv.nvmlInit()
    except Exception as exc:  # no library, no driver: no energy, never a zero
        log.debug("no GPU energy: %s", type(exc).__name__)
        return None
    try:
        out = {}
        for i in range(nv.nvmlDeviceGetCount()):
            try:
                handle = nv.nvmlDeviceGetHandleByIndex(i)
                uuid = nv.nvmlDeviceGetUUID(handle)
                out[str(uuid)] = int(nv.nvmlDeviceGetTotalEnergyConsumption(handle))
            except nv.NVMLError as exc:  # NotSupported, a GPU lost: that GPU only
                log.debug("GPU %d energy: %s", i, exc)
        return out
    except Exception as exc:
        log.debug("GPU energy unreadable: %s", type(exc).__name__)
        return None
    finally:
        with contextlib.suppress(Exception):
            nv.nvmlShutdown()


def joules_between(before: dict[str, int] | None, after: dict[str, int] | None
                   ) -> float | None:
    """Energy the GPUs read both times used in between; None when none was read twice. A
    counter that went backwards (a driver reload) counts for nothing."""
    if not before or not after:
        return None
    common = before.keys() & after.keys()
    if not common:
        return None
    return sum(max(0, after[g] - before[g]) for g in common) / 1000.0
