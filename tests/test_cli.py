"""The command line: probe's table and JSON, exit codes, version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from llmmon import __version__
from tests.conftest import SimProcess


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMMON_")}
    return subprocess.run([sys.executable, "-m", "llmmon", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def config(sim: SimProcess, write: Callable[..., Path], **kw: object) -> Path:
    return write({"endpoints": [{
        "name": "sim", "provider": "openai", "url": sim.base, "model": "m", **kw,
        "prompts": [{"name": "capital", "text": "What is the capital of France?",
                     "expect": {"contains": "Paris"}},
                    {"name": "count", "text": "Count from 1 to 5."}]}]})


def test_probe_json_lines(simulator_process: SimProcess,
                          write_config: Callable[..., Path]) -> None:
    """--json prints one object per probe, prompts rotating, with the measurements."""
    done = cli("probe", "-c", str(config(simulator_process, write_config)), "--count", "3",
               "--json")
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["prompt"] for r in results] == ["capital", "count", "capital"]
    assert all(r["ok"] and r["ttft"] > 0 and r["status"] == 200 for r in results)
    assert results[0]["check_passed"] is True
    assert results[1]["text"] == "1, 2, 3, 4, 5"
    assert len(results[1]["itl"]) == results[1]["output_tokens"] - 1


def test_probe_table_and_failure_exit_code(simulator_process: SimProcess,
                                           write_config: Callable[..., Path]) -> None:
    """The table has a row per probe; a failing probe makes the exit code 1."""
    path = config(simulator_process, write_config)
    table = cli("probe", "-c", str(path), "--count", "2")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:4] == ["endpoint", "prompt", "result", "TTFT"]
    assert len(rows) == 2
    assert rows[0].split()[2] == "ok"
    simulator_process.configure(error_rate=1.0)
    failed = cli("probe", "-c", str(path))
    assert failed.returncode == 1
    assert "http_5xx" in failed.stdout


def test_probe_usage_errors(simulator_process: SimProcess,
                            write_config: Callable[..., Path]) -> None:
    """An unknown endpoint or a config without endpoints is a usage error (exit 2)."""
    path = config(simulator_process, write_config)
    assert cli("probe", "-c", str(path), "--endpoint", "nope").returncode == 2
    empty = write_config({}, name="empty.yaml")
    assert cli("probe", "-c", str(empty)).returncode == 2


def test_version_and_help() -> None:
    """version prints the package version; no command prints help and exits 2."""
    assert cli("version").stdout.strip() == f"llmmon {__version__}"
    bare = cli()
    assert bare.returncode == 2
    assert "check-config" in bare.stdout
