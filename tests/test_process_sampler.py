"""The process sampler on real child processes: matching, restarts, refusals, GPU memory."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from llmmon.metrics.family import Family
from llmmon.samplers import process as ps
from llmmon.samplers.gpu_usage import GPUUsageByPid, PidUsage
from llmmon.samplers.process import ProcessSampler, ProcessTarget

MARK = "llmmon-process-sampler-test-target"


def spawn() -> subprocess.Popen[bytes]:
    """A target process, returned once it has finished starting up (its fds are settled)."""
    proc = subprocess.Popen([sys.executable, "-c",
                             f"import time; '{MARK}'; print('ready', flush=True); time.sleep(60)"],
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    return proc


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = spawn()
    yield proc
    proc.kill()
    proc.wait()


def reading(readings: Any, family: Family, target: str = "t") -> float | None:
    for fam, labels, value in readings or []:
        if fam is family and labels == (target,):
            return float(value)
    return None


@pytest.mark.parametrize("how", [{"cmdline": MARK}, {"cmdline_regex": r"llmmon-process-\w+"}])
def test_found_by_command_line(child: subprocess.Popen[bytes], how: dict[str, str]) -> None:
    """A substring or a regex of the command line finds the process; its values match psutil."""
    sampler = ProcessSampler([ProcessTarget(name="t", **how)])
    readings = sampler.sample()
    assert reading(readings, ps.PROC_UP) == 1.0
    proc = psutil.Process(child.pid)
    assert reading(readings, ps.PROC_THREADS) == proc.num_threads()
    assert reading(readings, ps.PROC_FDS) == proc.num_fds()
    rss = reading(readings, ps.PROC_RSS)
    assert rss is not None
    assert abs(rss - proc.memory_info().rss) < 1 << 20


def test_found_by_pidfile_and_by_name(child: subprocess.Popen[bytes], tmp_path: Path) -> None:
    """A pid file names the process; a bad pid file means down, not an error."""
    pidfile = tmp_path / "server.pid"
    pidfile.write_text(f"{child.pid}\n")
    name = psutil.Process(child.pid).name()
    sampler = ProcessSampler([ProcessTarget(name="t", pidfile=pidfile),
                              ProcessTarget(name="bad", pidfile=tmp_path / "missing.pid"),
                              ProcessTarget(name="n", process_name=name)])
    readings = sampler.sample()
    assert reading(readings, ps.PROC_UP) == 1.0
    assert reading(readings, ps.PROC_UP, "bad") == 0.0
    assert reading(readings, ps.PROC_UP, "n") == 1.0


def test_follows_a_restart_without_rescanning_every_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once found, a process is not searched for again; after it dies, the new pid is found."""
    scans: list[int] = []
    original = psutil.process_iter

    def counting(*args: Any, **kwargs: Any) -> Any:
        scans.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(psutil, "process_iter", counting)
    first = spawn()
    try:
        sampler = ProcessSampler([ProcessTarget(name="t", cmdline=MARK)])
        for _ in range(3):
            assert reading(sampler.sample(), ps.PROC_UP) == 1.0
        assert len(scans) == 1
        first.kill()
        first.wait()
        assert reading(sampler.sample(), ps.PROC_UP) == 0.0
        second = spawn()
        try:
            readings = sampler.sample()
            assert reading(readings, ps.PROC_UP) == 1.0
            assert sampler._found["t"].pid == second.pid
        finally:
            second.kill()
            second.wait()
    finally:
        first.kill()
        first.wait()


def test_access_denied_keeps_what_was_readable(child: subprocess.Popen[bytes],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A process whose fds may not be counted still reports its other values."""
    def denied(self: psutil.Process) -> int:
        raise psutil.AccessDenied(self.pid)

    monkeypatch.setattr(psutil.Process, "num_fds", denied)
    readings = ProcessSampler([ProcessTarget(name="t", cmdline=MARK)]).sample()
    assert reading(readings, ps.PROC_UP) == 1.0
    assert reading(readings, ps.PROC_FDS) is None
    assert reading(readings, ps.PROC_RSS) is not None


def test_gpu_usage_joined_from_the_gpu_sampler(child: subprocess.Popen[bytes]) -> None:
    """The GPU sampler's per-pid memory and SM share show up as the target's, per GPU."""
    usage = GPUUsageByPid()
    usage.replace({child.pid: PidUsage(3e9, {"0": 0.25, "1": 0.5}), 1: PidUsage(1.0)})
    readings = ProcessSampler([ProcessTarget(name="t", cmdline=MARK)], usage).sample()
    assert reading(readings, ps.PROC_GPU_MEM) == 3e9
    sm = {labels: value for fam, labels, value in readings or [] if fam is ps.PROC_GPU_SM}
    assert sm == {("t", "0"): 0.25, ("t", "1"): 0.5}
    # NVML withheld its memory (only utilisation samples): no memory series, not 0
    usage.replace({child.pid: PidUsage(None, {"0": 0.5})})
    readings = ProcessSampler([ProcessTarget(name="t", cmdline=MARK)], usage).sample()
    assert reading(readings, ps.PROC_GPU_MEM) is None


def test_target_needs_exactly_one_matcher() -> None:
    """A target with no matcher, or two, is a config error."""
    with pytest.raises(ValueError, match="exactly one"):
        ProcessTarget(name="t")
    with pytest.raises(ValueError, match="exactly one"):
        ProcessTarget(name="t", cmdline="x", process_name="y")
