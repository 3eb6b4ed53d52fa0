"""The host through psutil — CPU, load, memory, filesystems, disks, network — and, inside a
container, the cgroup's own limits and usage (psutil only sees the host)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psutil

from llmmon import metrics as m
from llmmon.config import HostSampler as HostConfig
from llmmon.metrics import Family, Reading
from llmmon.samplers.cgroup import CgroupReader, CgroupReading

# psutil's field names for CPU modes, exported as the `mode` label where present.
_CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
# Kernel and virtual filesystems: their "usage" says nothing about disk space.
PSEUDO_FS = frozenset({
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
    "devtmpfs", "efivarfs", "fusectl", "hugetlbfs", "mqueue", "nsfs", "proc", "pstore",
    "ramfs", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tmpfs", "tracefs",
})
_NET = ((m.HOST_NET_RX, "bytes_recv"), (m.HOST_NET_TX, "bytes_sent"),
        (m.HOST_NET_RX_PACKETS, "packets_recv"), (m.HOST_NET_TX_PACKETS, "packets_sent"),
        (m.HOST_NET_RX_ERRORS, "errin"), (m.HOST_NET_TX_ERRORS, "errout"),
        (m.HOST_NET_RX_DROPS, "dropin"), (m.HOST_NET_TX_DROPS, "dropout"))
_DISK = ((m.HOST_DISK_READ, "read_bytes"), (m.HOST_DISK_WRITTEN, "write_bytes"),
         (m.HOST_DISK_READS, "read_count"), (m.HOST_DISK_WRITES, "write_count"))


class HostSampler:
    name = "host"

    def __init__(self, config: HostConfig | None = None, sys_root: Path = Path("/sys"),
                 cgroups: CgroupReader | None = None) -> None:
        self.config = config or HostConfig()
        self.sys_root = sys_root
        self.cgroups = cgroups or CgroupReader()
        self._previous: Any = None

    def sample(self) -> list[Reading]:
        readings = self._cpu() + self._memory() + self._filesystems() + self._disks()
        readings += self._network()
        cgroup = self.cgroups.read()
        if cgroup is not None:
            readings += container_readings(cgroup)
        return readings

    def _cpu(self) -> list[Reading]:
        times = psutil.cpu_times()
        readings: list[Reading] = [(m.HOST_CPU_SECONDS, (mode,), float(getattr(times, mode)))
                                   for mode in _CPU_MODES if hasattr(times, mode)]
        if self._previous is not None and (ratio := busy_ratio(self._previous, times)) is not None:
            readings.append((m.HOST_CPU_RATIO, (), ratio))
        self._previous = times
        load1, load5, load15 = os.getloadavg()
        return readings + [(m.HOST_LOAD1, (), load1), (m.HOST_LOAD5, (), load5),
                           (m.HOST_LOAD15, (), load15)]

    def _memory(self) -> list[Reading]:
        memory, swap = psutil.virtual_memory(), psutil.swap_memory()
        return [
            (m.HOST_MEM_TOTAL, (), float(memory.total)),
            (m.HOST_MEM_AVAILABLE, (), float(memory.available)),
            (m.HOST_MEM_USED, (), float(memory.total - memory.available)),
            (m.HOST_SWAP_TOTAL, (), float(swap.total)),
            (m.HOST_SWAP_USED, (), float(swap.used)),
        ]

    def _filesystems(self) -> list[Reading]:
        readings: list[Reading] = []
        seen: set[str] = set()
        for part in psutil.disk_partitions(all=True):
            if (part.fstype in PSEUDO_FS or part.mountpoint in seen
                    or not self.config.mountpoints.admits(part.mountpoint)):
                continue
            try:
                usage = psutil.disk_usage(part.mountpoint)
            except OSError:
                continue  # unmounted meanwhile, or not ours to stat
            seen.add(part.mountpoint)
            labels = (part.mountpoint,)
            readings += [(m.HOST_DISK_TOTAL, labels, float(usage.total)),
                         (m.HOST_DISK_USED, labels, float(usage.used)),
                         (m.HOST_DISK_AVAIL, labels, float(usage.free))]
        return readings

    def _disks(self) -> list[Reading]:
        counters = psutil.disk_io_counters(perdisk=True) or {}
        block = self.sys_root / "block"
        readings: list[Reading] = []
        for device, io in counters.items():
            # Whole disks only: partitions would count the same bytes twice.
            if not (block / device).exists() or not self.config.devices.admits(device):
                continue
            readings += [(family, (device,), float(getattr(io, field)))
                         for family, field in _DISK]
        return readings

    def _network(self) -> list[Reading]:
        counters = psutil.net_io_counters(pernic=True) or {}
        readings: list[Reading] = []
        for interface, io in counters.items():
            if self.config.interfaces.admits(interface):
                readings += [(family, (interface,), float(getattr(io, field)))
                             for family, field in _NET]
        return readings

    def close(self) -> None:
        pass


def container_readings(cgroup: CgroupReading) -> list[Reading]:
    values: list[tuple[Family, float | int | None]] = [
        (m.CONTAINER_CPU_LIMIT, cgroup.cpu_limit_cores),
        (m.CONTAINER_CPU_USAGE, cgroup.cpu_usage_seconds),
        (m.CONTAINER_CPU_PERIODS, cgroup.cpu_periods),
        (m.CONTAINER_CPU_THROTTLED_PERIODS, cgroup.cpu_throttled_periods),
        (m.CONTAINER_CPU_THROTTLED, cgroup.cpu_throttled_seconds),
        (m.CONTAINER_MEM_LIMIT, cgroup.memory_limit_bytes),
        (m.CONTAINER_MEM_USAGE, cgroup.memory_usage_bytes),
        (m.CONTAINER_OOM, cgroup.oom_kills),
    ]
    return [(family, (), float(value)) for family, value in values if value is not None]


def busy_ratio(before: object, after: object) -> float | None:
    """Busy share of CPU time between two cpu_times() readings (idle and iowait are idle)."""
    def total(t: object) -> float:
        fields: tuple[str, ...] = getattr(t, "_fields", ())
        # guest time is already counted in user and nice
        return sum(float(getattr(t, f)) for f in fields if f not in ("guest", "guest_nice"))

    def idle(t: object) -> float:
        return float(getattr(t, "idle", 0.0)) + float(getattr(t, "iowait", 0.0))

    elapsed = total(after) - total(before)
    if elapsed <= 0:
        return None
    return min(1.0, max(0.0, 1.0 - (idle(after) - idle(before)) / elapsed))
