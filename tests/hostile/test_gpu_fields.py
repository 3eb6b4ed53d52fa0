"""Row 11: a driver that refuses fields. A GPU whose every field but its identity answers
NoPermission (or FunctionNotFound, or Unknown) loses those series and nothing else: it stays
up, and the GPU beside it reports in full. (Field by field: tests/test_gpu.py.)"""

from __future__ import annotations

import pynvml as real
import pytest

from llmmon.metrics.family import Reading
from llmmon.samplers import gpu_families as gf
from llmmon.samplers.gpu import GPUSampler
from llmmon.sim.nvml import FakeGPU, FakeNVML

# Everything the sampler may ask of a device once it knows which one it is.
FIELDS = ("nvmlDeviceGetUtilizationRates", "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetTemperature",
          "nvmlDeviceGetPowerUsage", "nvmlDeviceGetEnforcedPowerLimit",
          "nvmlDeviceGetTotalEnergyConsumption", "nvmlDeviceGetClockInfo",
          "nvmlDeviceGetFanSpeed", "nvmlDeviceGetCurrentClocksEventReasons",
          "nvmlDeviceGetTotalEccErrors", "nvmlDeviceGetPcieThroughput",
          "nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetViolationStatus")


def _series(readings: list[Reading], gpu: str) -> set[str]:
    return {family.name for family, labels, _ in readings if labels and labels[0] == gpu}


@pytest.mark.parametrize("code", [real.NVML_ERROR_NO_PERMISSION,
                                  real.NVML_ERROR_FUNCTION_NOT_FOUND, real.NVML_ERROR_UNKNOWN])
def test_a_gpu_refusing_every_field_stays_up_and_spares_its_neighbour(code: int) -> None:
    refusing = FakeGPU(errors=dict.fromkeys(FIELDS, code))
    fake = FakeNVML([refusing, FakeGPU(uuid="GPU-1")])
    sampler = GPUSampler(nvml=fake.module)
    for _ in range(3):  # and again: nothing stateful breaks on the next tick
        readings = sampler.sample()
        assert readings is not None
        up = {labels: value for family, labels, value in readings if family is gf.GPU_UP}
        assert up == {("0",): 1.0, ("1",): 1.0}
        assert gf.GPU_UTIL.name not in _series(readings, "0")
        assert gf.GPU_TEMP.name not in _series(readings, "0")
        assert {gf.GPU_UTIL.name, gf.GPU_TEMP.name, gf.GPU_POWER.name} <= _series(readings, "1")
    sampler.close()
