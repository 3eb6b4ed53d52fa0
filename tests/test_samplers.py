"""Samplers: host readings against /proc, the GPU sampler against a fake NVML."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from llmmon.metrics.family import Family, Reading
from llmmon.samplers import gpu_families as gs
from llmmon.samplers import host as hs
from llmmon.samplers.gpu import GPUSampler
from llmmon.samplers.gpu_usage import GPUUsageByPid
from llmmon.samplers.host import HostConfig, HostSampler
from llmmon.sim.nvml import FakeGPU, FakeNVML


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
    assert values(readings, hs.HOST_MEM_TOTAL)[()] == info["MemTotal"]
    assert abs(values(readings, hs.HOST_MEM_AVAILABLE)[()] - info["MemAvailable"]) < 64 << 20
    assert values(readings, hs.HOST_SWAP_TOTAL)[()] == info["SwapTotal"]


def test_host_cpu_ratio_needs_two_samples_and_is_a_ratio() -> None:
    """CPU utilisation comes from the delta of two readings and lies in 0..1."""
    sampler = HostSampler()
    assert hs.HOST_CPU_RATIO not in {f for f, _, _ in sampler.sample()}
    sum(i * i for i in range(300_000))  # burn a little CPU between the two samples
    ratio = values(sampler.sample(), hs.HOST_CPU_RATIO)[()]
    assert 0.0 <= ratio <= 1.0
    load = values(sampler.sample(), hs.HOST_LOAD1)[()]
    assert load == pytest.approx(os.getloadavg()[0], abs=0.5)


def test_gpu_readings_and_units() -> None:
    """Percentages become ratios, milliwatts watts, and identity sits in llmmon_gpu_info."""
    fake = FakeNVML([FakeGPU(), FakeGPU(uuid="GPU-1", temperature=80)])
    readings = GPUSampler(nvml=fake.module).sample()
    gpu0 = ("0", "GPU-00000000-0000-0000-0000-000000000000")
    assert values(readings, gs.GPU_UTIL)[gpu0] == 0.42
    assert values(readings, gs.GPU_MEM_UTIL)[gpu0] == 0.17
    assert values(readings, gs.GPU_POWER)[gpu0] == 250.0
    assert values(readings, gs.GPU_POWER_LIMIT)[gpu0] == 700.0
    assert values(readings, gs.GPU_MEM_TOTAL)[gpu0] == 80 << 30
    assert values(readings, gs.GPU_TEMP)[("1", "GPU-1")] == 80
    assert values(readings, gs.GPU_UP) == {("0",): 1.0, ("1",): 1.0}
    info = values(readings, gs.GPU_INFO)
    assert (*gpu0, "NVIDIA H100 80GB HBM3", "550.54.15", "12.4") in info


def test_gpu_field_not_supported_is_omitted_not_zero() -> None:
    """A sensor that answers NotSupported is left out for that GPU only."""
    fake = FakeNVML([FakeGPU(unsupported={"nvmlDeviceGetPowerUsage"}), FakeGPU(uuid="GPU-1")])
    readings = GPUSampler(nvml=fake.module).sample()
    assert set(values(readings, gs.GPU_POWER)) == {("1", "GPU-1")}
    assert len(values(readings, gs.GPU_TEMP)) == 2


def test_lost_gpu_reports_down_and_others_go_on() -> None:
    """A lost GPU gets gpu_up 0 and no other series; the other GPU still reports."""
    fake = FakeNVML([FakeGPU(lost=True), FakeGPU(uuid="GPU-1")])
    readings = GPUSampler(nvml=fake.module, clock=lambda: 0.0).sample()
    assert values(readings, gs.GPU_UP) == {("0",): 0.0, ("1",): 1.0}
    assert set(values(readings, gs.GPU_UTIL)) == {("1", "GPU-1")}


def test_no_library_means_no_data_and_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    """Without NVML the sampler returns None (no data, not a failure) and logs once."""
    sampler = GPUSampler(nvml=FakeNVML([], library=False).module, clock=lambda: 1e9)
    with caplog.at_level("INFO"):
        assert sampler.sample() is None
        assert sampler.sample() is None
    assert sum("no data" in r.message for r in caplog.records) == 1


def test_gpu_full_field_set() -> None:
    """Energy in joules, clocks in hertz, throttle reasons as 0/1, ECC, PCIe bytes/s, MIG."""
    fake = FakeNVML([FakeGPU(processes=[(os.getpid(), 1 << 30), (999_999_999, None)])])
    usage = GPUUsageByPid()
    readings = GPUSampler(nvml=fake.module, process_usage=usage).sample()
    gpu = ("0", FakeGPU().uuid)
    assert values(readings, gs.GPU_ENERGY)[gpu] == pytest.approx(123_456.789)
    assert values(readings, gs.GPU_CLOCK) == {gpu + ("sm",): 1980e6, gpu + ("memory",): 2619e6}
    assert values(readings, gs.GPU_FAN)[gpu] == 0.3
    throttle = values(readings, gs.GPU_THROTTLE)
    assert throttle[gpu + ("sw_power_cap",)] == 1.0
    assert throttle[gpu + ("sw_thermal_slowdown",)] == 1.0
    assert throttle[gpu + ("hw_slowdown",)] == 0.0
    assert len(throttle) == 9
    assert values(readings, gs.GPU_ECC) == {gpu + ("corrected",): 3, gpu + ("uncorrected",): 0}
    assert values(readings, gs.GPU_PCIE_RX)[gpu] == 2000 * 1024
    assert values(readings, gs.GPU_PCIE_TX)[gpu] == 1000 * 1024
    assert values(readings, gs.GPU_MIG)[gpu] == 0
    # the process NVML withholds memory for is left out; ours is named
    procs = values(readings, gs.GPU_PROC_MEM)
    assert list(procs) == [gpu + (str(os.getpid()), psutil.Process().name())]
    mine = usage.get(os.getpid())
    assert mine is not None
    assert mine.memory == 1 << 30


@pytest.mark.parametrize(("function", "family"), [
    ("nvmlDeviceGetTotalEnergyConsumption", gs.GPU_ENERGY),
    ("nvmlDeviceGetFanSpeed", gs.GPU_FAN),
    ("nvmlDeviceGetClockInfo", gs.GPU_CLOCK),
    ("nvmlDeviceGetTotalEccErrors", gs.GPU_ECC),
    ("nvmlDeviceGetPcieThroughput", gs.GPU_PCIE_RX),
    ("nvmlDeviceGetMigMode", gs.GPU_MIG),
    ("nvmlDeviceGetCurrentClocksEventReasons", gs.GPU_THROTTLE),
    ("nvmlDeviceGetTemperature", gs.GPU_TEMP),
    ("nvmlDeviceGetUtilizationRates", gs.GPU_UTIL),
])
def test_each_unsupported_field_is_omitted_for_that_gpu(function: str, family: Family) -> None:
    """Any field answering NotSupported disappears for that GPU; the rest still report."""
    fake = FakeNVML([FakeGPU(unsupported={function}), FakeGPU(uuid="GPU-1")])
    readings = GPUSampler(nvml=fake.module).sample()
    assert {labels[0] for labels in values(readings, family)} == {"1"}
    assert values(readings, gs.GPU_MEM_USED).keys() == {("0", FakeGPU().uuid), ("1", "GPU-1")}


def test_lost_gpu_is_retried_with_backoff_and_recovers() -> None:
    """A lost GPU is looked at again after 5 s, then 10 s; NVML is re-initialised first."""
    now = [0.0]
    fake = FakeNVML([FakeGPU(lost=True), FakeGPU(uuid="GPU-1")])
    sampler = GPUSampler(nvml=fake.module, clock=lambda: now[0])
    sampler.sample()
    fake.calls.clear()
    now[0] = 4.0  # within the backoff: the lost GPU is not touched, the other reports
    readings = sampler.sample()
    assert values(readings, gs.GPU_UP) == {("0",): 0.0, ("1",): 1.0}
    assert fake.calls
    assert {index for _, index in fake.calls} == {1}  # GPU 0 was left alone
    now[0] = 5.0  # retry: still lost, so the next look is 10 s later
    assert values(sampler.sample(), gs.GPU_UP)[("0",)] == 0.0
    fake.gpus[0].lost = False
    now[0] = 14.0
    assert values(sampler.sample(), gs.GPU_UP)[("0",)] == 0.0
    now[0] = 15.0
    readings = sampler.sample()
    assert values(readings, gs.GPU_UP) == {("0",): 1.0, ("1",): 1.0}
    assert ("0", FakeGPU().uuid) in values(readings, gs.GPU_UTIL)


def test_no_driver_is_no_data() -> None:
    """A library without a driver behaves as no GPU: no data, no exception."""
    assert GPUSampler(nvml=FakeNVML([], driver=False).module).sample() is None


def test_host_disk_usage_matches_statvfs() -> None:
    """The root filesystem's size equals statvfs; pseudo filesystems are not reported."""
    readings = HostSampler().sample()
    st = os.statvfs("/")
    assert values(readings, hs.HOST_DISK_TOTAL)[("/",)] == st.f_blocks * st.f_frsize
    mounts = {labels[0] for labels in values(readings, hs.HOST_DISK_TOTAL)}
    assert not any(p == "/proc" or p.startswith(("/sys", "/dev")) for p in mounts)


def _proc_net_dev() -> dict[str, list[int]]:
    out = {}
    for line in Path("/proc/net/dev").read_text().splitlines()[2:]:
        name, data = line.split(":", 1)
        out[name.strip()] = [int(x) for x in data.split()]
    return out


def test_host_network_matches_proc_net_dev() -> None:
    """Interface byte counters equal /proc/net/dev; loopback is excluded by default."""
    readings = HostSampler().sample()
    received = values(readings, hs.HOST_NET_RX)
    dev = _proc_net_dev()
    assert ("lo",) not in received
    for (interface,), value in received.items():
        assert 0 <= dev[interface][0] - value < 1 << 20  # it only grows in between


def test_host_disk_io_matches_diskstats_whole_disks_only() -> None:
    """Disk counters are for whole disks (partitions would double count), per /proc/diskstats."""
    readings = HostSampler().sample()
    reads = values(readings, hs.HOST_DISK_READS)
    stats = {line.split()[2]: int(line.split()[3])
             for line in Path("/proc/diskstats").read_text().splitlines()}
    for (device,), value in reads.items():
        assert Path("/sys/block", device).exists()
        assert 0 <= stats[device] - value < 10_000


def test_host_filters_are_configurable() -> None:
    """include/exclude regexes choose interfaces and mount points."""
    config = HostConfig(interfaces={"include": "^lo$"}, mountpoints={"exclude": "."})
    readings = HostSampler(config).sample()
    assert list(values(readings, hs.HOST_NET_RX)) == [("lo",)]
    assert values(readings, hs.HOST_DISK_TOTAL) == {}


def test_host_cpu_seconds_match_proc_stat() -> None:
    """Per-mode CPU seconds equal /proc/stat's first line divided by USER_HZ."""
    readings = HostSampler().sample()
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    hz = os.sysconf("SC_CLK_TCK")
    user = values(readings, hs.HOST_CPU_SECONDS)[("user",)]
    assert 0 <= int(fields[0]) / hz - user < 5
