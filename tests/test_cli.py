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
    header, *rows, summary = table.stdout.splitlines()
    assert header.split()[:4] == ["endpoint", "prompt", "result", "TTFT"]
    assert len(rows) == 2
    assert rows[0].split()[2] == "ok"
    assert summary.startswith("= sim: 2/2 ok (100%) · TTFT p50 ")
    simulator_process.configure(error_rate=1.0)
    failed = cli("probe", "-c", str(path))
    assert failed.returncode == 1
    assert "http_5xx" in failed.stdout


def test_probe_usage_errors(simulator_process: SimProcess,
                            write_config: Callable[..., Path]) -> None:
    """An unknown endpoint (the valid names listed) or a config without endpoints is a usage
    error (exit 2)."""
    path = config(simulator_process, write_config)
    wrong = cli("probe", "-c", str(path), "--endpoint", "nope")
    assert wrong.returncode == 2
    assert "no endpoint named nope; the configured ones: sim" in wrong.stderr
    empty = write_config({}, name="empty.yaml")
    assert cli("probe", "-c", str(empty)).returncode == 2


def test_probe_shows_why_and_the_failed_answer(simulator_process: SimProcess,
                                               write_config: Callable[..., Path]) -> None:
    """A failed check shows the answer and the expectation; a long name widens its column."""
    long_name = "an-endpoint-with-a-rather-long-name"
    path = write_config({"endpoints": [{
        "name": long_name, "provider": "openai", "url": simulator_process.base, "model": "m",
        "prompts": [{"name": "capital", "text": "What is the capital of France?",
                     "expect": {"contains": "Berlin"}}]}]})
    done = cli("probe", "-c", str(path))
    assert done.returncode == 1
    header, row, why, answer = done.stdout.splitlines()
    assert row.split()[:3] == [long_name, "capital", "check_failed"]
    assert header.index("prompt") == row.index("capital")  # columns line up
    assert why == "  why: the answer does not meet expect: contains 'Berlin'"
    assert answer == '  answer: "The capital of France is Paris."'


def test_probe_ad_hoc_without_a_config(simulator_process: SimProcess) -> None:
    """--url/--model probe without a config file; --json carries the detail and hint."""
    done = cli("probe", "--url", simulator_process.base, "--model", "m", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True
    wrong = cli("probe", "--url", simulator_process.base.removesuffix("/v1"), "--model", "m",
                "--json")
    assert wrong.returncode == 1
    result = json.loads(wrong.stdout)
    assert result["error"] == "http_4xx"
    assert result["status"] == 404
    assert "should end at the API base" in result["hint"]
    missing = cli("probe", "--url", simulator_process.base)
    assert missing.returncode == 2
    assert "--model is required" in missing.stderr
    bad = cli("probe", "--url", "ftp://x", "--model", "m")
    assert bad.returncode == 2
    assert "--url:" in bad.stderr


def test_version_and_help() -> None:
    """version prints the package version; no command prints help and exits 2."""
    assert cli("version").stdout.strip() == f"llmmon {__version__}"
    bare = cli()
    assert bare.returncode == 2
    assert "check-config" in bare.stdout
