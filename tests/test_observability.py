"""Alert rules, the Alertmanager example and the dashboards, against the real tools: promtool,
amtool, and a real Prometheus and Alertmanager scraping and routing a real llmmon."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from llmmon.samplers.cgroup import CgroupReader
from tests.conftest import Daemon, reported_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy/prometheus/llmmon-rules.yml"
DASHBOARDS = sorted((ROOT / "grafana/dashboards").glob("*.json"))


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is required: scripts/test installs it (Debian packages prometheus, " \
                 "prometheus-alertmanager)"
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def test_rules_pass_promtool_check_and_unit_tests() -> None:
    """promtool accepts the rules, and every alert's firing and quiet cases pass."""
    checked = run(tool("promtool"), "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(tool("promtool"), "test", "rules",
                 str(ROOT / "deploy/prometheus/tests/llmmon-rules.test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_severity_annotations_and_a_unit_test() -> None:
    """Each alert carries severity, summary, description and runbook, and is unit-tested."""
    rules = yaml.safe_load(RULES.read_text())
    tests = (ROOT / "deploy/prometheus/tests/llmmon-rules.test.yml").read_text()
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    assert len(alerts) >= 20
    for rule in alerts:
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
        assert f"alertname: {rule['alert']}" in tests, f"{rule['alert']} has no promtool test"


def test_alertmanager_example_passes_amtool() -> None:
    """The example Alertmanager config is valid."""
    config = ROOT / "deploy/alertmanager/alertmanager.yml"
    checked = run(tool("amtool"), "check-config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def targets() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) of every query of every dashboard."""
    out = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                out.append((path.name, panel["title"], target.get("expr", "")))
    return out


def test_dashboards_are_current_and_well_formed() -> None:
    """Generated JSON is up to date; ids unique; data source by variable; units; exprs."""
    fresh = run(sys.executable, str(ROOT / "grafana/build_dashboards.py"), "--check")
    assert fresh.returncode == 0, fresh.stdout
    assert len(DASHBOARDS) == 2
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        names = {v["name"] for v in board["templating"]["list"]}
        assert {"datasource", "job", "instance"} <= names
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
            for target in panel["targets"]:
                assert target["expr"].strip(), panel["title"]
                assert target["datasource"]["uid"] == "${datasource}"


def may_be_empty() -> dict[tuple[str, str, str], bool]:
    """The dashboard queries allowed to return nothing from the test's stack (llmmon --demo),
    as (dashboard, panel title, series the query reads): whether each may be empty here."""
    cgroup = CgroupReader().read()  # llmmon's limits are those of the cgroup the tests run in
    return {
        # vLLM's own server-side TTFT, drawn beside llmmon's: only a vLLM server exports it,
        # and the demo's endpoint is llmmon's simulator.
        ("llm-endpoints.json", "TTFT: llmmon (client) against vLLM (server), p90",
         "vllm:time_to_first_token_seconds_bucket"): True,
        # Kernel time is the saturation panel's fallback for GPUs without GPM; the demo's
        # scripted GPUs all have GPM, so the fallback query is empty by design.
        ("llm-resources.json", "Saturation: SM activity (kernel time where no GPM)",
         "llmmon_gpu_utilization_ratio"): True,
        # XIDs are drawn only where one occurred within the hour (`increase(...) > 0`): empty
        # on a healthy GPU, and here until the demo's one XID (its third GPU sample) has been
        # scraped after its counter's 0; waiting for it would add ~10 s to the test.
        ("llm-resources.json", "Critical XID events", "llmmon_gpu_xid_errors_total"): True,
        # The container's CPU quota and memory limit are exported only when its cgroup sets
        # them; on a machine (or in a container) without limits the series do not exist.
        ("llm-resources.json", "Container CPU against its limit",
         "llmmon_container_cpu_limit_cores"): cgroup is None or cgroup.cpu_limit_cores is None,
        ("llm-resources.json", "Container memory against its limit",
         "llmmon_container_memory_limit_bytes"):
            cgroup is None or cgroup.memory_limit_bytes is None,
    }


def allowlisted(board: str, title: str, expr: str, allowlist: Iterable[tuple[str, str, str]]
                ) -> bool:
    return any(board == b and title == t and series in expr for b, t, series in allowlist)


def expand(expr: str) -> str:
    """Grafana's template variables as the dashboards would send them."""
    for var, value in (("$__rate_interval", "1m"), ("$__range", "5m"), ("$job", ".*"),
                       ("$instance", ".*"), ("$endpoint", ".*"), ("$gpu", ".*")):
        expr = expr.replace(var, value)
    return expr


class Webhook:
    """Alertmanager's webhook receiver, inside the test."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        received = self.alerts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.extend(json.loads(body)["alerts"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def stack(tmp_path: Path, start_daemon: Callable[..., Daemon]
          ) -> Iterator[tuple[Daemon, str, Webhook]]:
    """llmmon --demo, scraped every second by Prometheus, alerting through Alertmanager."""
    daemon = start_daemon("--demo")
    webhook = Webhook()
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> int:
        """Start one of the tools on port 0; the port it got, from its log (exporter-toolkit's
        `msg="Listening on" address=127.0.0.1:PORT`, after the bind)."""
        log_path = tmp_path / f"{name}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen([tool(name), *args, "--web.listen-address=127.0.0.1:0"],
                                    stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        return reported_port(proc, log_path, r'msg="Listening on" address=127\.0\.0\.1:(\d+)',
                             name)

    (tmp_path / "am.yml").write_text(yaml.safe_dump({
        "route": {"receiver": "test", "group_by": ["alertname", "endpoint"], "group_wait": "1s",
                  "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "test", "webhook_configs": [
            {"url": f"http://127.0.0.1:{webhook.port}/", "send_resolved": False}]}],
    }))
    # The rules as shipped, with their `for:` durations shortened so a test can wait for them.
    (tmp_path / "rules.yml").write_text(re.sub(r"for: \d+m", "for: 3s", RULES.read_text()))
    try:
        am_port = start("prometheus-alertmanager", f"--config.file={tmp_path}/am.yml",
                        f"--storage.path={tmp_path}/am", "--cluster.listen-address=")
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp_path / "rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [
                {"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [{"job_name": "llmmon", "static_configs": [
                {"targets": [f"127.0.0.1:{daemon.port}"]}]}],
        }))
        prom_port = start("prometheus", f"--config.file={tmp_path}/prometheus.yml",
                          f"--storage.tsdb.path={tmp_path}/tsdb")
        yield daemon, f"http://127.0.0.1:{prom_port}", webhook
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        webhook.server.shutdown()


def query(prometheus: str, expr: str) -> dict[str, Any]:
    """Prometheus's answer; {} while it is still starting (503, not JSON)."""
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    try:
        return dict(response.json())
    except ValueError:
        return {}


def test_dashboards_and_endpoint_down_alert_end_to_end(stack: tuple[Daemon, str, Webhook]
                                                       ) -> None:
    """Every dashboard query is valid PromQL and returns data from a live demo, but for those
    allowed to be empty; then the simulated endpoint fails and LLMEndpointDown reaches the
    webhook through Alertmanager."""
    daemon, prometheus, webhook = stack
    allowed = may_be_empty()
    stale = [key for key in allowed if not any(allowlisted(*query, [key]) for query in targets())]
    assert not stale, f"allowed to be empty, but no longer on a dashboard: {stale}"
    may_be = [key for key, empty_here in allowed.items() if empty_here]

    def has(expr: str) -> bool:
        try:
            return bool(query(prometheus, expr).get("data", {}).get("result"))
        except httpx.HTTPError:
            return False

    # data from every part: probes, the load probe (first burst after ~5 s), GPUs, processes
    wait_for(lambda: has("llmmon_load_last_run_timestamp_seconds")
             and has("rate(llmmon_probe_time_to_first_token_seconds_count[1m]) > 0"), 60,
             "Prometheus to have scraped probes and a load burst")
    results = [(board, title, expr, query(prometheus, expand(expr)))
               for board, title, expr in targets()]
    invalid = [(title, expr, r.get("error")) for _, title, expr, r in results
               if r.get("status") != "success"]
    assert not invalid, invalid
    empty = [(board, title, expr) for board, title, expr, r in results if not r["data"]["result"]]
    print(f"\n{len(results) - len(empty)}/{len(results)} dashboard queries returned data; "
          "empty: " + "; ".join(f"{t}: {e}" for _, t, e in empty))

    def unexpected() -> list[tuple[str, str, str]]:
        return [(board, title, expr) for board, title, expr in targets()
                if not allowlisted(board, title, expr, may_be) and not has(expand(expr))]

    # A series can trail the ones waited for by a scrape or two: the others are asked again.
    if late := [query for query in empty if not allowlisted(*query, may_be)]:
        wait_for(lambda: not unexpected(), 20, f"data for {late}")

    match = re.search(r"http://127\.0\.0\.1:(\d+)/v1", daemon.get("/").text)
    assert match, "the landing page names the demo endpoint"
    httpx.post(f"http://127.0.0.1:{match.group(1)}/sim/config", json={"error_rate": 1.0},
               timeout=5).raise_for_status()
    wait_for(lambda: any(a["labels"].get("alertname") == "LLMEndpointDown"
                         and a["labels"].get("endpoint") == "demo" for a in webhook.alerts),
             90, "LLMEndpointDown to reach the webhook")
    alert = next(a for a in webhook.alerts if a["labels"]["alertname"] == "LLMEndpointDown")
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"] == "LLM endpoint demo is failing its probes"
    assert alert["status"] == "firing"
