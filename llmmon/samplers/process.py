"""The model server's own process (and any other configured targets), found by command line.

Once a target's process is found it is kept, so a tick costs a few /proc reads; the full
process scan runs again only when that process has gone (a restart gives a new pid).
"""

from __future__ import annotations

import os

import psutil

from llmmon import metrics as m
from llmmon.config import ProcessTarget
from llmmon.metrics import Reading


class ProcessSampler:
    name = "process"

    def __init__(self, targets: list[ProcessTarget]) -> None:
        self._targets = targets
        self._found: dict[str, psutil.Process] = {}

    def sample(self) -> list[Reading] | None:
        if not self._targets:
            return None
        readings: list[Reading] = []
        for target in self._targets:
            proc = self._locate(target)
            values = _read(proc, target.name) if proc is not None else None
            if values is None:
                self._found.pop(target.name, None)
            readings.append((m.PROC_UP, (target.name,), 0.0 if values is None else 1.0))
            readings += values or []
        return readings

    def _locate(self, target: ProcessTarget) -> psutil.Process | None:
        proc = self._found.get(target.name)
        if proc is not None and proc.is_running():
            return proc
        self._found.pop(target.name, None)
        me = os.getpid()
        for candidate in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(candidate.info.get("cmdline") or ())
            if candidate.pid != me and target.cmdline in cmdline:
                self._found[target.name] = candidate
                return candidate
        return None

    def close(self) -> None:
        self._found.clear()


def _read(proc: psutil.Process, name: str) -> list[Reading] | None:
    """What can be read of one process (a field the OS refuses is left out); None if gone."""
    readings: list[Reading] = []
    try:
        with proc.oneshot():
            cpu = proc.cpu_times()
            readings.append((m.PROC_CPU, (name,), cpu.user + cpu.system))
            readings.append((m.PROC_RSS, (name,), float(proc.memory_info().rss)))
            readings.append((m.PROC_THREADS, (name,), float(proc.num_threads())))
            try:
                readings.append((m.PROC_FDS, (name,), float(proc.num_fds())))
            except psutil.AccessDenied:
                pass  # another user's process: its fds are not ours to count
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        pass
    return readings
