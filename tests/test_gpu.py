"""The GPU sampler's newer fields against the fake NVML: GPM, MIG instances, XID events,
violation time, retired pages and remapped rows, per-process utilisation, per-field errors
and the cost of each NVML call."""

from __future__ import annotations

import os

import psutil
import pynvml as real
import pytest

from llmmon.metrics.family import Family, Reading
from llmmon.samplers import gpu_families as gf
from llmmon.samplers.gpu import GPUSampler
from llmmon.samplers.gpu_events import XID_LABELS
from llmmon.samplers.gpu_usage import GPUUsageByPid
from llmmon.sim.nvml import FakeGPU, FakeNVML
from tests.conftest import wait_for

GPU0 = ("0", FakeGPU().uuid)
GPU1 = ("1", "GPU-1")
GPM = {real.NVML_GPM_METRIC_SM_UTIL: 87.5, real.NVML_GPM_METRIC_SM_OCCUPANCY: 40.0,
       real.NVML_GPM_METRIC_ANY_TENSOR_UTIL: 62.5, real.NVML_GPM_METRIC_DRAM_BW_UTIL: 25.0,
       real.NVML_GPM_METRIC_PCIE_TX_PER_SEC: 3.0, real.NVML_GPM_METRIC_PCIE_RX_PER_SEC: 5.0,
       real.NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC: 100.0,
       real.NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC: 200.0}


def values(readings: list[Reading] | None, family: Family) -> dict[tuple[str, ...], float]:
    return {labels: value for fam, labels, value in readings or [] if fam is family}


def test_gpm_ratios_over_the_interval_between_two_ticks() -> None:
    """GPM needs two samples: nothing on the first tick, the scripted values on the next,
    percentages as ratios and MiB/s as bytes/s; PCIe then comes from GPM, not the 20 ms call."""
    fake = FakeNVML([FakeGPU(gpm=True, gpm_metrics=GPM)])
    sampler = GPUSampler(nvml=fake.module)
    first = sampler.sample()
    assert values(first, gf.GPU_SM_ACTIVE) == {}
    readings = sampler.sample()
    whole = GPU0 + ("",)
    assert values(readings, gf.GPU_SM_ACTIVE) == {whole: 0.875}
    assert values(readings, gf.GPU_SM_OCCUPANCY) == {whole: 0.40}
    assert values(readings, gf.GPU_TENSOR_ACTIVE) == {whole: 0.625}
    assert values(readings, gf.GPU_DRAM_ACTIVE) == {whole: 0.25}
    assert values(readings, gf.GPU_PCIE_TX) == {GPU0: 3 * 2**20}
    assert values(readings, gf.GPU_PCIE_RX) == {GPU0: 5 * 2**20}
    assert values(readings, gf.GPU_NVLINK_TX) == {GPU0: 100 * 2**20}
    assert values(readings, gf.GPU_NVLINK_RX) == {GPU0: 200 * 2**20}
    assert ("nvmlDeviceGetPcieThroughput", 0) not in fake.calls
    sampler.close()


def test_gpm_per_mig_instance() -> None:
    """Under MIG each GPU instance gets its own GPM series beside the whole GPU's."""
    instances = {1: {real.NVML_GPM_METRIC_SM_UTIL: 50.0}, 2: {real.NVML_GPM_METRIC_SM_UTIL: 10.0}}
    fake = FakeNVML([FakeGPU(gpm=True, gpm_metrics=GPM, gpm_instances=instances, mig=(1, 1))])
    sampler = GPUSampler(nvml=fake.module)
    sampler.sample()
    active = values(sampler.sample(), gf.GPU_SM_ACTIVE)
    assert active == {GPU0 + ("",): 0.875, GPU0 + ("1",): 0.5, GPU0 + ("2",): 0.1}
    sampler.close()


def test_gpu_without_gpm_keeps_every_other_series() -> None:
    """A GPU without GPM has no GPM series (absent, not 0) and still reports the rest,
    PCIe included from the legacy call; a GPM GPU beside it reports GPM."""
    fake = FakeNVML([FakeGPU(), FakeGPU(uuid="GPU-1", gpm=True, gpm_metrics=GPM)])
    sampler = GPUSampler(nvml=fake.module)
    sampler.sample()
    readings = sampler.sample()
    assert set(values(readings, gf.GPU_SM_ACTIVE)) == {GPU1 + ("",)}
    assert values(readings, gf.GPU_PCIE_RX) == {GPU0: 2000 * 1024, GPU1: 5 * 2**20}
    for family in (gf.GPU_UTIL, gf.GPU_MEM_USED, gf.GPU_TEMP, gf.GPU_POWER, gf.GPU_ENERGY,
                   gf.GPU_FAN, gf.GPU_MIG, gf.GPU_REMAPPED_ROWS):
        assert {labels[:2] for labels in values(readings, family)} == {GPU0, GPU1}, family.name
    sampler.close()


def test_violation_time_retired_pages_and_remapped_rows() -> None:
    """Violation nanoseconds become seconds by policy (unsupported policies are absent);
    retired pages count by cause; remapped rows, pending and failed as scripted."""
    gpu = FakeGPU(violation_ns={real.NVML_PERF_POLICY_POWER: 2_500_000_000,
                                real.NVML_PERF_POLICY_THERMAL: 1_000_000_000},
                  retired_pages={real.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR: 3},
                  remapped_rows=(4, 1, 1, 0))
    readings = GPUSampler(nvml=FakeNVML([gpu, FakeGPU(uuid="GPU-1")]).module).sample()
    assert values(readings, gf.GPU_VIOLATION) == {GPU0 + ("power",): 2.5,
                                                  GPU0 + ("thermal",): 1.0}
    assert values(readings, gf.GPU_RETIRED_PAGES) == {GPU0 + ("multiple_single_bit_ecc",): 0,
                                                      GPU0 + ("double_bit_ecc",): 3}
    assert values(readings, gf.GPU_REMAPPED_ROWS)[GPU0 + ("corrected",)] == 4
    assert values(readings, gf.GPU_REMAPPED_ROWS)[GPU0 + ("uncorrected",)] == 1
    assert values(readings, gf.GPU_REMAP_PENDING) == {GPU0: 1.0, GPU1: 0.0}
    assert values(readings, gf.GPU_REMAP_FAILED) == {GPU0: 0.0, GPU1: 0.0}


def test_per_process_sm_utilisation_joined_by_pid() -> None:
    """Each pid's SM share is the mean of NVML's samples since the last tick; the next tick
    asks only for newer samples, and a tick without any has no such series."""
    me, other = os.getpid(), 999_999_999
    gpu = FakeGPU(process_samples=[(me, 100, 50, 10), (me, 200, 70, 10), (other, 150, 20, 0)])
    fake = FakeNVML([gpu])
    usage = GPUUsageByPid()
    sampler = GPUSampler(nvml=fake.module, process_usage=usage)
    sm = values(sampler.sample(), gf.GPU_PROC_SM)
    assert sm == {GPU0 + (str(me), psutil.Process().name()): pytest.approx(0.6),
                  GPU0 + (str(other), ""): pytest.approx(0.2)}
    mine = usage.get(me)
    assert mine is not None
    assert mine.sm == {"0": pytest.approx(0.6)}
    assert values(sampler.sample(), gf.GPU_PROC_SM) == {}  # nothing newer than 200
    gpu.process_samples.append((me, 300, 10, 0))
    assert list(values(sampler.sample(), gf.GPU_PROC_SM).values()) == [pytest.approx(0.1)]


@pytest.mark.parametrize("code", [real.NVML_ERROR_NO_PERMISSION,
                                  real.NVML_ERROR_FUNCTION_NOT_FOUND, real.NVML_ERROR_UNKNOWN,
                                  real.NVML_ERROR_NOT_SUPPORTED])
@pytest.mark.parametrize(("function", "family"), [
    ("nvmlDeviceGetPowerUsage", gf.GPU_POWER),
    ("nvmlDeviceGetTemperature", gf.GPU_TEMP),
    ("nvmlDeviceGetViolationStatus", gf.GPU_VIOLATION),
    ("nvmlDeviceGetComputeRunningProcesses", gf.GPU_PROC_MEM),
    ("nvmlDeviceGetCurrentClocksEventReasons", gf.GPU_THROTTLE),
])
def test_one_failing_field_drops_only_that_series(code: int, function: str, family: Family
                                                  ) -> None:
    """Any error on one field but the GPU being gone drops that series for that GPU; the
    GPU stays up and every other series of it is there."""
    policy = {real.NVML_PERF_POLICY_POWER: 1}
    broken = FakeGPU(errors={function: code}, violation_ns=policy, processes=[(1, 1)])
    fake = FakeNVML([broken, FakeGPU(uuid="GPU-1", violation_ns=policy, processes=[(1, 1)])])
    readings = GPUSampler(nvml=fake.module).sample()
    assert values(readings, gf.GPU_UP) == {("0",): 1.0, ("1",): 1.0}
    assert {labels[:2] for labels in values(readings, family)} == {GPU1}
    for other in (gf.GPU_UTIL, gf.GPU_MEM_USED, gf.GPU_ENERGY, gf.GPU_CLOCK, gf.GPU_ECC):
        assert {labels[:2] for labels in values(readings, other)} == {GPU0, GPU1}


def test_gone_errors_mark_the_gpu_down() -> None:
    """GpuIsLost on any field, or Unknown on the UUID (the GPU not answering), is the whole
    GPU down; the other GPU reports."""
    fake = FakeNVML([FakeGPU(errors={"nvmlDeviceGetFanSpeed": real.NVML_ERROR_GPU_IS_LOST}),
                     FakeGPU(uuid="GPU-1"),
                     FakeGPU(uuid="GPU-2", errors={"nvmlDeviceGetUUID": real.NVML_ERROR_UNKNOWN})])
    readings = GPUSampler(nvml=fake.module).sample()
    assert values(readings, gf.GPU_UP) == {("0",): 0.0, ("1",): 1.0, ("2",): 0.0}
    assert {labels[:2] for labels in values(readings, gf.GPU_UTIL)} == {GPU1}


def test_critical_xid_events_counted_by_gpu_and_code() -> None:
    """XID events from a watcher thread: known codes by number, others as `other`, only for
    GPUs that could register; closing stops the thread."""
    fake = FakeNVML([FakeGPU(), FakeGPU(uuid="GPU-1"),
                     FakeGPU(uuid="GPU-2", unsupported={"nvmlDeviceRegisterEvents"})])
    sampler = GPUSampler(nvml=fake.module)
    sampler.sample()
    for event in ((0, 79), (0, 79), (1, 31), (0, 9999), (2, 48)):
        fake.xid_queue.put(event)
    counted = {GPU0 + ("79",): 2.0, GPU1 + ("31",): 1.0, GPU0 + ("other",): 1.0}

    def seen() -> bool:
        xids = values(sampler.sample(), gf.GPU_XID)
        return {k: v for k, v in xids.items() if v} == counted

    wait_for(seen, 10, "XIDs counted")
    xids = values(sampler.sample(), gf.GPU_XID)
    # every known code of a watched GPU is there from the start, at 0; GPU 2 has none
    assert len(xids) == 2 * len(XID_LABELS)
    assert xids[GPU0 + ("48",)] == 0
    assert sampler._xid is not None
    thread = sampler._xid._thread
    sampler.close()
    assert thread is not None
    assert not thread.is_alive()


def test_nvml_calls_are_counted_and_timed_by_function() -> None:
    """Every NVML call of a tick is counted by function name, with the time it took."""
    fake = FakeNVML([FakeGPU(), FakeGPU(uuid="GPU-1")])
    readings = GPUSampler(nvml=fake.module).sample()
    calls = values(readings, gf.NVML_CALLS)
    assert calls[("nvmlDeviceGetPowerUsage",)] == 2
    assert calls[("nvmlDeviceGetUtilizationRates",)] == 2  # once per GPU for two fields
    seconds = values(readings, gf.NVML_SECONDS)
    assert set(seconds) == set(calls)
    assert all(s >= 0 for s in seconds.values())


def test_xids_of_a_lost_gpu_are_still_exported() -> None:
    """XID 79 (fallen off the bus) comes with the GPU being lost: its count stays exported
    under the GPU's labels while the GPU is down."""
    fake = FakeNVML([FakeGPU(), FakeGPU(uuid="GPU-1")])
    sampler = GPUSampler(nvml=fake.module)
    sampler.sample()
    fake.xid_queue.put((0, 79))
    wait_for(lambda: values(sampler.sample(), gf.GPU_XID).get(GPU0 + ("79",)) == 1.0, 10,
             "the XID counted")
    fake.gpus[0].lost = True
    readings = sampler.sample()
    assert values(readings, gf.GPU_UP)[("0",)] == 0.0
    assert values(readings, gf.GPU_XID)[GPU0 + ("79",)] == 1.0
    sampler.close()


def test_a_renumbered_gpu_is_identified_again() -> None:
    """When the UUID at an index changes (GPUs renumbered after a reset), the labels follow
    the new GPU instead of the cached identity."""
    fake = FakeNVML([FakeGPU()])
    sampler = GPUSampler(nvml=fake.module)
    sampler.sample()
    fake.gpus[0].uuid = "GPU-new"
    readings = sampler.sample()
    assert set(values(readings, gf.GPU_UTIL)) == {("0", "GPU-new")}
    assert {labels[1] for labels in values(readings, gf.GPU_INFO)} == {"GPU-new"}
