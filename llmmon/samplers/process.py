"""The model server's own process (and any other configured targets).

A target is found by a command-line substring or regular expression, its process name, or a
pid file. Once found, its ``psutil.Process`` is kept, so a tick costs a few /proc reads; the
full process scan runs again only when that process has gone (a restart gives a new pid).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import psutil
from pydantic import Field, field_validator, model_validator

from llmmon.config import Name, Regex, SamplerConfig, StrictModel, compile_regex, unique_names
from llmmon.config.regex import searchable
from llmmon.metrics.family import Family, Reading
from llmmon.samplers.gpu_usage import GPUUsageByPid


class ProcessTarget(StrictModel):
    """A process to watch, found by exactly one of: a command-line substring, a command-line
    regular expression, its process name, or a pid file."""

    name: Name
    cmdline: str | None = Field(default=None, min_length=1, max_length=1000)
    cmdline_regex: Regex | None = None
    process_name: str | None = Field(default=None, min_length=1, max_length=255)
    pidfile: Path | None = None

    @model_validator(mode="after")
    def _one_matcher(self) -> ProcessTarget:
        given = [self.cmdline, self.cmdline_regex, self.process_name, self.pidfile]
        if sum(v is not None for v in given) != 1:
            raise ValueError("give exactly one of cmdline, cmdline_regex, process_name, pidfile")
        return self


class ProcessConfig(SamplerConfig):
    targets: list[ProcessTarget] = Field(default_factory=list)

    _unique_targets = field_validator("targets")(unique_names("target"))

    def active(self) -> bool:
        return self.enabled and bool(self.targets)


PROC_UP = Family("llmmon_target_process_up", "gauge", "1 if a process matches the target.",
                 ("target",), group="process")
PROC_CPU = Family("llmmon_target_process_cpu_seconds_total", "counter",
                  "User and system CPU time of the target process.", ("target",),
                  group="process")
PROC_RSS = Family("llmmon_target_process_resident_memory_bytes", "gauge",
                  "Resident memory of the target process.", ("target",), group="process")
PROC_THREADS = Family("llmmon_target_process_threads", "gauge", "Threads of the target process.",
                      ("target",), group="process")
PROC_GPU_MEM = Family("llmmon_target_process_gpu_memory_bytes", "gauge",
                      "Device memory used by the target process, all GPUs summed.", ("target",),
                      group="process")
PROC_GPU_SM = Family("llmmon_target_process_gpu_sm_utilization_ratio", "gauge",
                     "Share of the last sample period the target process had a kernel running "
                     "on this GPU's SMs (its own share when processes share a GPU).",
                     ("target", "gpu"), group="process")
PROC_FDS = Family("llmmon_target_process_open_fds", "gauge",
                  "Open file descriptors of the target process.", ("target",), group="process")

FAMILIES: tuple[Family, ...] = (
    PROC_UP, PROC_CPU, PROC_RSS, PROC_THREADS, PROC_GPU_MEM, PROC_GPU_SM, PROC_FDS,
)


class ProcessSampler:
    name = "process"

    def __init__(self, targets: list[ProcessTarget], gpu_usage: GPUUsageByPid | None = None
                 ) -> None:
        self._targets = targets
        self._gpu_usage = gpu_usage
        self._found: dict[str, psutil.Process] = {}
        # RE2 (linear time): a process may name itself so as to stall a backtracking regex.
        self._regexes = {t.name: compile_regex(t.cmdline_regex)
                         for t in targets if t.cmdline_regex}

    def sample(self) -> list[Reading] | None:
        if not self._targets:
            return None
        readings: list[Reading] = []
        for target in self._targets:
            proc = self._locate(target)
            values = _read(proc, target.name) if proc is not None else None
            if values is None:
                self._found.pop(target.name, None)
            elif self._gpu_usage is not None and proc is not None:
                values += _gpu_readings(self._gpu_usage, proc.pid, target.name)
            readings.append((PROC_UP, (target.name,), 0.0 if values is None else 1.0))
            readings += values or []
        return readings

    def _locate(self, target: ProcessTarget) -> psutil.Process | None:
        proc = self._found.get(target.name)
        if proc is not None and proc.is_running():
            return proc
        self._found.pop(target.name, None)
        proc = self._from_pidfile(target) if target.pidfile else self._scan(target)
        if proc is not None:
            self._found[target.name] = proc
        return proc

    def _from_pidfile(self, target: ProcessTarget) -> psutil.Process | None:
        assert target.pidfile is not None
        try:
            return psutil.Process(int(target.pidfile.read_text().split()[0]))
        except (OSError, ValueError, IndexError, psutil.Error):
            return None  # no file yet, garbage in it, or a stale pid

    def _scan(self, target: ProcessTarget) -> psutil.Process | None:
        me = os.getpid()
        regex = self._regexes.get(target.name)
        for candidate in psutil.process_iter(["cmdline", "name"]):
            if candidate.pid == me:
                continue
            cmdline = " ".join(candidate.info.get("cmdline") or ())
            if matches(target, regex, cmdline, candidate.info.get("name")):
                return candidate
        return None

    def close(self) -> None:
        self._found.clear()


class _Searcher(Protocol):
    def search(self, text: str, /) -> object: ...


def matches(target: ProcessTarget, regex: _Searcher | None, cmdline: str,
            name: str | None) -> bool:
    """Whether a process with this command line and name is ``target`` (``regex`` is its
    compiled ``cmdline_regex``); pid-file targets never match here."""
    return ((target.cmdline is not None and target.cmdline in cmdline)
            or (regex is not None and regex.search(searchable(cmdline)) is not None)
            or (target.process_name is not None and name == target.process_name))


def _gpu_readings(usage: GPUUsageByPid, pid: int, name: str) -> list[Reading]:
    """What the GPU sampler last saw the process use: memory, and SM time on each GPU."""
    used = usage.get(pid)
    if used is None:
        return []
    memory = [(PROC_GPU_MEM, (name,), used.memory)] if used.memory is not None else []
    return memory + [(PROC_GPU_SM, (name, gpu), sm) for gpu, sm in sorted(used.sm.items())]


def _read(proc: psutil.Process, name: str) -> list[Reading] | None:
    """What can be read of one process (a field the OS refuses is left out); None if gone."""
    readings: list[Reading] = []
    try:
        with proc.oneshot():
            cpu = proc.cpu_times()
            readings.append((PROC_CPU, (name,), cpu.user + cpu.system))
            readings.append((PROC_RSS, (name,), float(proc.memory_info().rss)))
            readings.append((PROC_THREADS, (name,), float(proc.num_threads())))
            try:
                readings.append((PROC_FDS, (name,), float(proc.num_fds())))
            except psutil.AccessDenied:
                pass  # another user's process: its fds are not ours to count
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        pass  # keep what was readable before the refusal
    return readings
