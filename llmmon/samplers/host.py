"""The host through psutil — CPU, load, memory, filesystems, disks, network — and, inside a
container, the cgroup's own limits and usage (psutil only sees the host)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psutil
from pydantic import Field

from llmmon.config import NameFilter, SamplerConfig
from llmmon.config.regex import LOOPBACK, PSEUDO_MOUNTS, VIRTUAL_DEVICES
from llmmon.metrics.family import Family, Kind, Reading
from llmmon.samplers.cgroup import CgroupReader, CgroupReading


class HostConfig(SamplerConfig):
    # Pseudo filesystems are skipped by type; these filter what is left by mount point.
    mountpoints: NameFilter = Field(
        default_factory=lambda: NameFilter(exclude=PSEUDO_MOUNTS))
    devices: NameFilter = Field(default_factory=lambda: NameFilter(exclude=VIRTUAL_DEVICES))
    interfaces: NameFilter = Field(default_factory=lambda: NameFilter(exclude=LOOPBACK))


HOST_CPU_RATIO = Family("llmmon_host_cpu_utilization_ratio", "gauge",
                        "Share of all CPUs busy since the previous sample (0..1).", group="host")
HOST_CPU_SECONDS = Family("llmmon_host_cpu_seconds_total", "counter",
                          "CPU time spent in each mode, all CPUs summed.", ("mode",), group="host")
HOST_LOAD1 = Family("llmmon_host_load1", "gauge", "1-minute load average.", group="host")
HOST_LOAD5 = Family("llmmon_host_load5", "gauge", "5-minute load average.", group="host")
HOST_LOAD15 = Family("llmmon_host_load15", "gauge", "15-minute load average.", group="host")
HOST_MEM_TOTAL = Family("llmmon_host_memory_total_bytes", "gauge", "Physical memory.",
                        group="host")
HOST_MEM_AVAILABLE = Family("llmmon_host_memory_available_bytes", "gauge",
                            "Memory available to new work without swapping.", group="host")
HOST_MEM_USED = Family("llmmon_host_memory_used_bytes", "gauge", "Memory in use (total - "
                       "available).", group="host")
HOST_SWAP_TOTAL = Family("llmmon_host_swap_total_bytes", "gauge", "Swap space.", group="host")
HOST_SWAP_USED = Family("llmmon_host_swap_used_bytes", "gauge", "Swap in use.", group="host")

_MP, _DEV, _IF = ("mountpoint",), ("device",), ("interface",)


def _host(name: str, kind: Kind, help: str, labels: tuple[str, ...] = ()) -> Family:
    return Family(name, kind, help, labels, group="host")


HOST_DISK_TOTAL = _host("llmmon_host_disk_total_bytes", "gauge", "Filesystem size.", _MP)
HOST_DISK_USED = _host("llmmon_host_disk_used_bytes", "gauge", "Filesystem space in use.", _MP)
HOST_DISK_AVAIL = _host("llmmon_host_disk_avail_bytes", "gauge",
                        "Filesystem space available to unprivileged users.", _MP)
HOST_DISK_READ = _host("llmmon_host_disk_read_bytes_total", "counter", "Bytes read.", _DEV)
HOST_DISK_WRITTEN = _host("llmmon_host_disk_written_bytes_total", "counter", "Bytes written.",
                          _DEV)
HOST_DISK_READS = _host("llmmon_host_disk_reads_completed_total", "counter",
                        "Read operations completed.", _DEV)
HOST_DISK_WRITES = _host("llmmon_host_disk_writes_completed_total", "counter",
                         "Write operations completed.", _DEV)
HOST_NET_RX = _host("llmmon_host_network_receive_bytes_total", "counter", "Bytes received.", _IF)
HOST_NET_TX = _host("llmmon_host_network_transmit_bytes_total", "counter", "Bytes sent.", _IF)
HOST_NET_RX_PACKETS = _host("llmmon_host_network_receive_packets_total", "counter",
                            "Packets received.", _IF)
HOST_NET_TX_PACKETS = _host("llmmon_host_network_transmit_packets_total", "counter",
                            "Packets sent.", _IF)
HOST_NET_RX_ERRORS = _host("llmmon_host_network_receive_errors_total", "counter",
                           "Receive errors.", _IF)
HOST_NET_TX_ERRORS = _host("llmmon_host_network_transmit_errors_total", "counter",
                           "Transmit errors.", _IF)
HOST_NET_RX_DROPS = _host("llmmon_host_network_receive_drops_total", "counter",
                          "Received packets dropped.", _IF)
HOST_NET_TX_DROPS = _host("llmmon_host_network_transmit_drops_total", "counter",
                          "Outgoing packets dropped.", _IF)
CONTAINER_CPU_LIMIT = _host("llmmon_container_cpu_limit_cores", "gauge",
                            "The cgroup's CPU quota in cores (absent when unlimited).")
CONTAINER_CPU_USAGE = _host("llmmon_container_cpu_usage_seconds_total", "counter",
                            "CPU time used by the cgroup.")
CONTAINER_CPU_PERIODS = _host("llmmon_container_cpu_periods_total", "counter",
                              "CFS enforcement periods elapsed.")
CONTAINER_CPU_THROTTLED_PERIODS = _host("llmmon_container_cpu_throttled_periods_total",
                                        "counter", "CFS periods in which the cgroup was "
                                        "throttled.")
CONTAINER_CPU_THROTTLED = _host("llmmon_container_cpu_throttled_seconds_total", "counter",
                                "Time the cgroup spent throttled.")
CONTAINER_MEM_LIMIT = _host("llmmon_container_memory_limit_bytes", "gauge",
                            "The cgroup's memory limit (absent when unlimited).")
CONTAINER_MEM_USAGE = _host("llmmon_container_memory_usage_bytes", "gauge",
                            "Memory charged to the cgroup.")
CONTAINER_OOM = _host("llmmon_container_memory_oom_kills_total", "counter",
                      "Processes of the cgroup killed by the OOM killer.")

FAMILIES: tuple[Family, ...] = (
    HOST_CPU_RATIO, HOST_CPU_SECONDS, HOST_LOAD1, HOST_LOAD5, HOST_LOAD15, HOST_MEM_TOTAL,
    HOST_MEM_AVAILABLE, HOST_MEM_USED, HOST_SWAP_TOTAL, HOST_SWAP_USED, HOST_DISK_TOTAL,
    HOST_DISK_USED, HOST_DISK_AVAIL, HOST_DISK_READ, HOST_DISK_WRITTEN, HOST_DISK_READS,
    HOST_DISK_WRITES, HOST_NET_RX, HOST_NET_TX, HOST_NET_RX_PACKETS, HOST_NET_TX_PACKETS,
    HOST_NET_RX_ERRORS, HOST_NET_TX_ERRORS, HOST_NET_RX_DROPS, HOST_NET_TX_DROPS,
    CONTAINER_CPU_LIMIT, CONTAINER_CPU_USAGE, CONTAINER_CPU_PERIODS,
    CONTAINER_CPU_THROTTLED_PERIODS, CONTAINER_CPU_THROTTLED, CONTAINER_MEM_LIMIT,
    CONTAINER_MEM_USAGE, CONTAINER_OOM,
)


# psutil's field names for CPU modes, exported as the `mode` label where present.
_CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
# Kernel and virtual filesystems: their "usage" says nothing about disk space.
PSEUDO_FS = frozenset({
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
    "devtmpfs", "efivarfs", "fusectl", "hugetlbfs", "mqueue", "nsfs", "proc", "pstore",
    "ramfs", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tmpfs", "tracefs",
})
_NET = ((HOST_NET_RX, "bytes_recv"), (HOST_NET_TX, "bytes_sent"),
        (HOST_NET_RX_PACKETS, "packets_recv"), (HOST_NET_TX_PACKETS, "packets_sent"),
        (HOST_NET_RX_ERRORS, "errin"), (HOST_NET_TX_ERRORS, "errout"),
        (HOST_NET_RX_DROPS, "dropin"), (HOST_NET_TX_DROPS, "dropout"))
_DISK = ((HOST_DISK_READ, "read_bytes"), (HOST_DISK_WRITTEN, "write_bytes"),
         (HOST_DISK_READS, "read_count"), (HOST_DISK_WRITES, "write_count"))


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
        readings: list[Reading] = [(HOST_CPU_SECONDS, (mode,), float(getattr(times, mode)))
                                   for mode in _CPU_MODES if hasattr(times, mode)]
        if self._previous is not None and (ratio := busy_ratio(self._previous, times)) is not None:
            readings.append((HOST_CPU_RATIO, (), ratio))
        self._previous = times
        load1, load5, load15 = os.getloadavg()
        return readings + [(HOST_LOAD1, (), load1), (HOST_LOAD5, (), load5),
                           (HOST_LOAD15, (), load15)]

    def _memory(self) -> list[Reading]:
        memory, swap = psutil.virtual_memory(), psutil.swap_memory()
        return [
            (HOST_MEM_TOTAL, (), float(memory.total)),
            (HOST_MEM_AVAILABLE, (), float(memory.available)),
            (HOST_MEM_USED, (), float(memory.total - memory.available)),
            (HOST_SWAP_TOTAL, (), float(swap.total)),
            (HOST_SWAP_USED, (), float(swap.used)),
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
            readings += [(HOST_DISK_TOTAL, labels, float(usage.total)),
                         (HOST_DISK_USED, labels, float(usage.used)),
                         (HOST_DISK_AVAIL, labels, float(usage.free))]
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
        (CONTAINER_CPU_LIMIT, cgroup.cpu_limit_cores),
        (CONTAINER_CPU_USAGE, cgroup.cpu_usage_seconds),
        (CONTAINER_CPU_PERIODS, cgroup.cpu_periods),
        (CONTAINER_CPU_THROTTLED_PERIODS, cgroup.cpu_throttled_periods),
        (CONTAINER_CPU_THROTTLED, cgroup.cpu_throttled_seconds),
        (CONTAINER_MEM_LIMIT, cgroup.memory_limit_bytes),
        (CONTAINER_MEM_USAGE, cgroup.memory_usage_bytes),
        (CONTAINER_OOM, cgroup.oom_kills),
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
