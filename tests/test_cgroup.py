"""cgroup v1 and v2 limits and usage, on fixture trees and on parser strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmmon.samplers import host as hs
from llmmon.samplers.cgroup import (
    CgroupReader,
    parse_cpu_max,
    parse_keyed,
    parse_limit,
    parse_self_cgroup,
)
from llmmon.samplers.host import container_readings


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


V2 = {
    "proc/self/cgroup": "0::/kubepods/pod1/ctr\n",
    "cg/cgroup.controllers": "cpu memory\n",
    "cg/kubepods/pod1/ctr/cpu.max": "150000 100000\n",
    "cg/kubepods/pod1/ctr/cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"
                                     "nr_periods 40\nnr_throttled 7\nthrottled_usec 350000\n",
    "cg/kubepods/pod1/ctr/memory.max": "536870912\n",
    "cg/kubepods/pod1/ctr/memory.current": "123456789\n",
    "cg/kubepods/pod1/ctr/memory.events": "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n",
}


def test_v2_with_limits(tmp_path: Path) -> None:
    """cgroup v2: quota in cores, usage and throttling in seconds, limit, OOM kills."""
    root = tree(tmp_path, V2)
    reading = CgroupReader(root / "proc", root / "cg").read()
    assert reading is not None
    assert reading.version == 2
    assert reading.cpu_limit_cores == 1.5
    assert reading.cpu_usage_seconds == pytest.approx(2.5)
    assert (reading.cpu_periods, reading.cpu_throttled_periods) == (40, 7)
    assert reading.cpu_throttled_seconds == pytest.approx(0.35)
    assert reading.memory_limit_bytes == 512 << 20
    assert reading.memory_usage_bytes == 123456789
    assert reading.oom_kills == 2


def test_v2_without_limits_in_a_namespace(tmp_path: Path) -> None:
    """"max" means no limit (no series); with a cgroup namespace the mount root is ours."""
    files = {k.replace("kubepods/pod1/ctr/", ""): v for k, v in V2.items()}
    files.update({"proc/self/cgroup": "0::/\n", "cg/cpu.max": "max 100000\n",
                  "cg/memory.max": "max\n"})
    root = tree(tmp_path, files)
    reading = CgroupReader(root / "proc", root / "cg").read()
    assert reading is not None
    names = {family.name for family, _, _ in container_readings(reading)}
    assert "llmmon_container_cpu_limit_cores" not in names
    assert "llmmon_container_memory_limit_bytes" not in names
    assert "llmmon_container_memory_usage_bytes" in names
    assert "llmmon_container_cpu_usage_seconds_total" in names


V1 = {
    "proc/self/cgroup": "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n",
    "cg/memory/docker/abc/memory.limit_in_bytes": "1073741824\n",
    "cg/memory/docker/abc/memory.usage_in_bytes": "52428800\n",
    "cg/memory/docker/abc/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
    "cg/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "50000\n",
    "cg/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
    "cg/cpu,cpuacct/docker/abc/cpuacct.usage": "7000000000\n",
    "cg/cpu,cpuacct/docker/abc/cpu.stat":
        "nr_periods 10\nnr_throttled 3\nthrottled_time 90000000\n",
}


def test_v1_with_limits(tmp_path: Path) -> None:
    """cgroup v1 (cpu,cpuacct together): quota, usage in ns, throttled_time, memory limit."""
    root = tree(tmp_path, V1)
    reading = CgroupReader(root / "proc", root / "cg").read()
    assert reading is not None
    assert reading.version == 1
    assert reading.cpu_limit_cores == 0.5
    assert reading.cpu_usage_seconds == pytest.approx(7.0)
    assert reading.cpu_throttled_seconds == pytest.approx(0.09)
    assert reading.cpu_throttled_periods == 3
    assert reading.memory_limit_bytes == 1 << 30
    assert reading.memory_usage_bytes == 50 << 20
    assert reading.oom_kills == 1


def test_v1_unlimited_with_split_controllers(tmp_path: Path) -> None:
    """v1 with cpu and cpuacct mounted apart, quota -1 and the 2^63-ish memory "limit"."""
    files = {
        "proc/self/cgroup": "5:memory:/\n3:cpuacct:/\n2:cpu:/\n",
        "cg/memory/memory.limit_in_bytes": "9223372036854771712\n",
        "cg/memory/memory.usage_in_bytes": "1000\n",
        "cg/cpu/cpu.cfs_quota_us": "-1\n",
        "cg/cpu/cpu.cfs_period_us": "100000\n",
        "cg/cpuacct/cpuacct.usage": "5000000000\n",
    }
    root = tree(tmp_path, files)
    reading = CgroupReader(root / "proc", root / "cg").read()
    assert reading is not None
    assert reading.cpu_limit_cores is None
    assert reading.memory_limit_bytes is None
    assert reading.cpu_usage_seconds == pytest.approx(5.0)
    assert reading.oom_kills is None  # an old kernel without oom_kill in oom_control


def test_no_cgroup_filesystem(tmp_path: Path) -> None:
    """Without /proc/self/cgroup or a cgroup mount there is nothing to report."""
    assert CgroupReader(tmp_path / "proc", tmp_path / "cg").read() is None


def test_parsers_on_strings() -> None:
    """The parsers on the shapes the kernel writes, including junk."""
    assert parse_cpu_max("max 100000") is None
    assert parse_cpu_max("200000 100000\n") == 2.0
    assert parse_cpu_max("garbage") is None
    assert parse_limit("max") is None
    assert parse_limit("4096\n") == 4096
    assert parse_limit("") is None
    assert parse_keyed("a 1\nb -2\nc x\n") == {"a": 1, "b": -2}
    assert parse_self_cgroup("0::/a\n3:cpu,cpuacct:/b\n") == {"": "/a", "cpu": "/b",
                                                              "cpuacct": "/b"}


def test_container_readings_families(tmp_path: Path) -> None:
    """A full v2 reading gives every container family once."""
    root = tree(tmp_path, V2)
    reading = CgroupReader(root / "proc", root / "cg").read()
    assert reading is not None
    families = [family for family, _, _ in container_readings(reading)]
    assert len(families) == len(set(families)) == 8
    assert hs.CONTAINER_OOM in families
