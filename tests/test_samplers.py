"""Samplers: host readings against /proc, the GPU sampler against a fake NVML."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmmon import metrics as m
from llmmon.metrics import Family, Reading
from llmmon.samplers.gpu import GPUSampler
from llmmon.samplers.host import HostSampler
from tests.fake_nvml import FakeGPU, FakeNVML


def values(readings: list[Reading] | None, family: Family) -> dict[tuple[str, ...], float]:
    return {labels: value for fam, labels, value in readings or [] if fam is family}


def meminfo() -> dict[str, int]:
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, rest = line.split(":", 1)
        out[key] = int(rest.split()[0]) * 1024
    return out


def test_host_memory_matches_proc_meminfo() -> None:
    """Total memory equals /proc/meminfo; available is within 64 MiB of it (it moves)."""
    readings = HostSampler().sample()
    info = meminfo()
    assert values(readings, m.HOST_MEM_TOTAL)[()] == info["MemTotal"]
    assert abs(values(readings, m.HOST_MEM_AVAILABLE)[()] - info["MemAvailable"]) < 64 << 20
    assert values(readings, m.HOST_SWAP_TOTAL)[()] == info["SwapTotal"]


def test_host_cpu_ratio_needs_two_samples_and_is_a_ratio() -> None:
    """CPU utilisation comes from the delta of two readings and lies in 0..1."""
    sampler = HostSampler()
    assert m.HOST_CPU_RATIO not in {f for f, _, _ in sampler.sample()}
    sum(i * i for i in range(300_000))  # burn a little CPU between the two samples
    ratio = values(sampler.sample(), m.HOST_CPU_RATIO)[()]
    assert 0.0 <= ratio <= 1.0
    load = values(sampler.sample(), m.HOST_LOAD1)[()]
    assert load == pytest.approx(os.getloadavg()[0], abs=0.5)


def test_gpu_readings_and_units() -> None:
    """Percentages become ratios, milliwatts watts, and identity sits in llmmon_gpu_info."""
    fake = FakeNVML([FakeGPU(), FakeGPU(uuid="GPU-1", temperature=80)])
    readings = GPUSampler(nvml=fake.module).sample()
    gpu0 = ("0", "GPU-00000000-0000-0000-0000-000000000000")
    assert values(readings, m.GPU_UTIL)[gpu0] == 0.42
    assert values(readings, m.GPU_MEM_UTIL)[gpu0] == 0.17
    assert values(readings, m.GPU_POWER)[gpu0] == 250.0
    assert values(readings, m.GPU_POWER_LIMIT)[gpu0] == 700.0
    assert values(readings, m.GPU_MEM_TOTAL)[gpu0] == 80 << 30
    assert values(readings, m.GPU_TEMP)[("1", "GPU-1")] == 80
    assert values(readings, m.GPU_UP) == {("0",): 1.0, ("1",): 1.0}
    info = values(readings, m.GPU_INFO)
    assert (*gpu0, "NVIDIA H100 80GB HBM3", "550.54.15", "12.4") in info


def test_gpu_field_not_supported_is_omitted_not_zero() -> None:
    """A sensor that answers NotSupported is left out for that GPU only."""
    fake = FakeNVML([FakeGPU(unsupported={"nvmlDeviceGetPowerUsage"}), FakeGPU(uuid="GPU-1")])
    readings = GPUSampler(nvml=fake.module).sample()
    assert set(values(readings, m.GPU_POWER)) == {("1", "GPU-1")}
    assert len(values(readings, m.GPU_TEMP)) == 2


def test_lost_gpu_reports_down_and_others_go_on() -> None:
    """A lost GPU gets gpu_up 0 and no other series; the other GPU still reports."""
    fake = FakeNVML([FakeGPU(lost=True), FakeGPU(uuid="GPU-1")])
    readings = GPUSampler(nvml=fake.module, clock=lambda: 0.0).sample()
    assert values(readings, m.GPU_UP) == {("0",): 0.0, ("1",): 1.0}
    assert set(values(readings, m.GPU_UTIL)) == {("1", "GPU-1")}


def test_no_library_means_no_data_and_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    """Without NVML the sampler returns None (no data, not a failure) and logs once."""
    sampler = GPUSampler(nvml=FakeNVML([], library=False).module, clock=lambda: 1e9)
    with caplog.at_level("INFO"):
        assert sampler.sample() is None
        assert sampler.sample() is None
    assert sum("no data" in r.message for r in caplog.records) == 1
