"""The daemon says why: /probes?endpoint=NAME (behind /metrics' auth), the status page, a log
line when an endpoint's outcome changes, success 0 whenever a user is not served."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import bcrypt
import httpx
import yaml

from tests.conftest import Daemon, SimProcess, sample, wait_for

SECRET = "Zq7historyKey5d1f0c2b7a9e"  # no sk- prefix: only its own masking hides it


def _config(sim: SimProcess, **kw: object) -> dict[str, object]:
    return {"probe_history": 3, "endpoints": [{
        "name": "sim", "provider": "openai", "url": sim.base, "model": "m", "interval": "1s",
        "timeout": "5s", "api_key_env": "HISTORY_KEY", "load": {
            "concurrency": 2, "requests": 4, "every": "1h"}, **kw}]}


def _requests(daemon: Daemon, outcome: str) -> float:
    return sample(daemon.metrics(), "llmmon_probe_requests_total", llm_endpoint="sim",
                  outcome=outcome) or 0


def test_why_a_probe_failed_is_shown_everywhere_but_labels(
        start_daemon: Callable[..., Daemon], simulator_process: SimProcess,
        write_config: Callable[..., Path]) -> None:
    path = write_config(_config(simulator_process))
    daemon = start_daemon("-c", str(path), env={"HISTORY_KEY": SECRET})
    wait_for(lambda: _requests(daemon, "success") >= 1, 30, "a successful probe")

    # A gateway whose upstream failed: 200, a clean stream, no answer.
    simulator_process.configure(fault="empty")
    wait_for(lambda: _requests(daemon, "empty") >= 1, 30, "an empty probe")
    metrics = daemon.metrics()
    assert sample(metrics, "llmmon_probe_success", llm_endpoint="sim") == 0
    assert sample(metrics, "llmmon_probe_http_status_code", llm_endpoint="sim") == 200

    # A rejected key, echoed back by the server: the detail says so, masked.
    simulator_process.configure(fault="http_401")
    wait_for(lambda: _requests(daemon, "http_4xx") >= 1, 30, "a rejected probe")
    page = daemon.get("/").text
    assert "Incorrect API key provided" in page
    assert "key was rejected" in page
    assert 'href="/probes?endpoint=sim"' in page

    history = daemon.get("/probes", params={"endpoint": "sim", "format": "json"}).json()
    probes = history["probes"]
    assert 1 <= len(probes) <= 3  # probe_history bounds it
    last = probes[-1]
    assert last["outcome"] == "http_4xx"
    assert last["status"] == 401
    assert last["request"]["url"] == simulator_process.base
    assert "Incorrect API key provided" in last["detail"]
    text = daemon.get("/probes", params={"endpoint": "sim"}).text
    assert "== " in text
    assert "hint: the key was rejected" in text
    assert daemon.get("/probes", params={"endpoint": "nope"}).status_code == 404
    assert daemon.get("/probes").status_code == 400

    log = daemon.log()
    assert "endpoint sim: probe failed: empty" in log
    assert "endpoint sim: probe failed: http_4xx: 401: Incorrect API key provided" in log
    # once per change, not once per probe
    assert log.count("probe failed: http_4xx") == 1
    for where in (log, page, text, metrics, daemon.metrics()):
        assert SECRET not in where
        assert SECRET[:12] not in where


def test_probes_page_is_behind_the_metrics_auth(
        tmp_path: Path, start_daemon: Callable[..., Daemon], simulator_process: SimProcess,
        write_config: Callable[..., Path]) -> None:
    hashed = bcrypt.hashpw(b"pass-word", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yaml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {"prom": hashed}}))
    path = write_config({**_config(simulator_process), "web_config_file": str(web)})
    daemon = start_daemon("-c", str(path), env={"HISTORY_KEY": SECRET})
    url = daemon.url + "/probes?endpoint=sim"
    assert httpx.get(url, timeout=5).status_code == 401
    assert httpx.get(url, auth=("prom", "pass-word"), timeout=5).status_code == 200


def test_load_probe_failures_are_counted_by_reason(
        start_daemon: Callable[..., Daemon], simulator_process: SimProcess,
        write_config: Callable[..., Path]) -> None:
    simulator_process.configure(error_rate=1.0)
    path = write_config(_config(simulator_process, interval="1s"))
    daemon = start_daemon("-c", str(path), env={"HISTORY_KEY": SECRET})

    def counted() -> bool:
        return (sample(daemon.metrics(), "llmmon_load_errors_total", llm_endpoint="sim",
                       reason="http_5xx") or 0) >= 4

    wait_for(counted, 30, "the load probe's failures by reason")
    metrics = daemon.metrics()
    assert sample(metrics, "llmmon_load_error_ratio", llm_endpoint="sim") == 1
    assert sample(metrics, "llmmon_load_errors_total", llm_endpoint="sim", reason="timeout") == 0
