"""The limits and usage of the cgroup llmmon runs in: inside a container psutil reports the
host, so the container's own CPU quota, memory limit, throttling and OOM kills come from here.

cgroup v2 (``cpu.max``, ``cpu.stat``, ``memory.max``, ``memory.current``, ``memory.events``)
with a v1 fallback (``cpu.cfs_quota_us``, ``cpuacct.usage``, ``memory.limit_in_bytes``, …).
A limit of "max" (or v1's -1 / page-rounded 2^63) means none, and then no limit is reported.
Reading is split from parsing so the parsers are tested on strings and the reader on fixture
trees (both roots are injectable).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# cgroup v1 reports "no memory limit" as the largest page-aligned signed 64-bit value.
_V1_UNLIMITED = 1 << 62


@dataclass
class CgroupReading:
    version: int
    cpu_limit_cores: float | None = None
    cpu_usage_seconds: float | None = None
    cpu_periods: int | None = None
    cpu_throttled_periods: int | None = None
    cpu_throttled_seconds: float | None = None
    memory_limit_bytes: int | None = None
    memory_usage_bytes: int | None = None
    oom_kills: int | None = None


def parse_self_cgroup(text: str) -> dict[str, str]:
    """/proc/self/cgroup as {controller: path}; cgroup v2's single line is under ""."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                paths[controller] = parts[2]
    return paths


def parse_keyed(text: str) -> dict[str, int]:
    """Files of "key value" lines (cpu.stat, memory.events)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def parse_cpu_max(text: str) -> float | None:
    """cpu.max ("max 100000" or "200000 100000") as cores; None for no limit."""
    quota, _, period = text.strip().partition(" ")
    if quota == "max" or not quota.isdigit() or not period.strip().isdigit():
        return None
    return int(quota) / int(period) if int(period) else None


def parse_limit(text: str) -> int | None:
    """memory.max / memory.limit_in_bytes; None for "max" or v1's unlimited."""
    value = text.strip()
    if not value.isdigit():
        return None
    number = int(value)
    return None if number >= _V1_UNLIMITED else number


class CgroupReader:
    def __init__(self, proc_root: Path = Path("/proc"),
                 cgroup_root: Path = Path("/sys/fs/cgroup")) -> None:
        self.proc_root = proc_root
        self.cgroup_root = cgroup_root

    def read(self) -> CgroupReading | None:
        """None when no cgroup filesystem is mounted (not Linux, or hidden)."""
        try:
            paths = parse_self_cgroup((self.proc_root / "self/cgroup").read_text())
        except OSError:
            return None
        if (self.cgroup_root / "cgroup.controllers").exists():
            return self._v2(self._dir(self.cgroup_root, paths.get("", "/")))
        if paths and (self.cgroup_root / "memory").exists():
            return self._v1(paths)
        return None

    def _dir(self, mount: Path, path: str) -> Path:
        """The cgroup's directory. With a cgroup namespace (or a private mount, as in most
        containers) the path in /proc/self/cgroup may not exist under the mount: then the
        mount's root is the container's own cgroup."""
        candidate = mount / path.lstrip("/")
        return candidate if candidate.is_dir() else mount

    def _v2(self, d: Path) -> CgroupReading:
        stat = parse_keyed(_read(d / "cpu.stat") or "")
        events = parse_keyed(_read(d / "memory.events") or "")
        return CgroupReading(
            version=2,
            cpu_limit_cores=parse_cpu_max(_read(d / "cpu.max") or "max"),
            cpu_usage_seconds=_scaled(stat.get("usage_usec"), 1e-6),
            cpu_periods=stat.get("nr_periods"),
            cpu_throttled_periods=stat.get("nr_throttled"),
            cpu_throttled_seconds=_scaled(stat.get("throttled_usec"), 1e-6),
            memory_limit_bytes=parse_limit(_read(d / "memory.max") or "max"),
            memory_usage_bytes=_int(_read(d / "memory.current")),
            oom_kills=events.get("oom_kill"),
        )

    def _v1_dir(self, controller: str, paths: dict[str, str]) -> Path:
        """v1 mounts controllers alone (cpu, cpuacct) or together (cpu,cpuacct)."""
        for mount in ("cpu,cpuacct" if controller.startswith("cpu") else "", controller):
            if mount and (self.cgroup_root / mount).is_dir():
                return self._dir(self.cgroup_root / mount, paths.get(controller, "/"))
        return self.cgroup_root / controller

    def _v1(self, paths: dict[str, str]) -> CgroupReading:
        cpu, acct = self._v1_dir("cpu", paths), self._v1_dir("cpuacct", paths)
        memory = self._v1_dir("memory", paths)
        quota = _int(_read(cpu / "cpu.cfs_quota_us"))
        period = _int(_read(cpu / "cpu.cfs_period_us"))
        stat = parse_keyed(_read(cpu / "cpu.stat") or "")
        oom = parse_keyed(_read(memory / "memory.oom_control") or "")
        return CgroupReading(
            version=1,
            cpu_limit_cores=quota / period if quota and quota > 0 and period else None,
            cpu_usage_seconds=_scaled(_int(_read(acct / "cpuacct.usage")), 1e-9),
            cpu_periods=stat.get("nr_periods"),
            cpu_throttled_periods=stat.get("nr_throttled"),
            cpu_throttled_seconds=_scaled(stat.get("throttled_time"), 1e-9),
            memory_limit_bytes=parse_limit(_read(memory / "memory.limit_in_bytes") or ""),
            memory_usage_bytes=_int(_read(memory / "memory.usage_in_bytes")),
            oom_kills=oom.get("oom_kill"),
        )


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None  # a controller that is not enabled for this cgroup


def _int(text: str | None) -> int | None:
    value = (text or "").strip()
    return int(value) if value.lstrip("-").isdigit() else None


def _scaled(value: int | None, factor: float) -> float | None:
    return value * factor if value is not None else None
