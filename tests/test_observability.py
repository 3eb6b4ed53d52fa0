"""Alert rules, the Alertmanager example and the dashboards, against the real tools: promtool,
amtool, and a real Prometheus and Alertmanager scraping and routing a real llmmon."""

from __future__ import annotations

import json
import re
import shutil
import socket
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
from tests.conftest import Daemon, SimProcess, reported_port, wait_for

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


RULE_TESTS = sorted((ROOT / "deploy/prometheus/tests").glob("*.test.yml"))
RUNBOOKS = "https://github.com/example/llmmon/blob/main/docs/runbooks.md#"


def alerts() -> list[dict[str, Any]]:
    rules = yaml.safe_load(RULES.read_text())
    return [r for g in rules["groups"] for r in g["rules"] if "alert" in r]


def test_rules_pass_promtool_check_and_unit_tests() -> None:
    """promtool accepts the rules, and every alert's firing and quiet cases pass; the
    generated SLO tests are current."""
    checked = run(tool("promtool"), "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(tool("promtool"), "test", "rules", *map(str, RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    fresh = run(sys.executable, str(ROOT / "deploy/prometheus/tests/build_slo_tests.py"),
                "--check")
    assert fresh.returncode == 0, fresh.stdout


def test_every_alert_has_severity_annotations_a_runbook_and_a_unit_test() -> None:
    """Each alert carries severity, summary, description and a runbook_url whose section
    exists in docs/runbooks.md, and is unit-tested."""
    tests = "\n".join(path.read_text() for path in RULE_TESTS)
    runbooks = (ROOT / "docs/runbooks.md").read_text()
    sections = {line[3:].strip().lower() for line in runbooks.splitlines()
                if line.startswith("## ")}
    assert len(alerts()) >= 40
    for rule in alerts():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), name
        assert rule["annotations"]["runbook_url"] == RUNBOOKS + name.lower(), name
        assert name.lower() in sections, f"docs/runbooks.md has no section {name}"
        assert f"alertname: {name}" in tests, f"{name} has no promtool test"


def test_no_rule_aggregates_away_the_target() -> None:
    """Aggregations keep namespace, job and instance (`without`, never `by` a list lacking
    them), and no rule reads the Operator's `endpoint` label."""
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            expr = rule["expr"]
            assert not re.search(r"\bendpoint\s*[=!~]", expr), rule
            for match in re.finditer(r"\bby\s*\(([^)]*)\)", expr):
                kept = {label.strip() for label in match.group(1).split(",")}
                assert {"namespace", "job", "instance"} <= kept, (rule, match.group(0))


def test_alertmanager_example_passes_amtool() -> None:
    """The example Alertmanager config is valid."""
    config = ROOT / "deploy/alertmanager/alertmanager.yml"
    checked = run(tool("amtool"), "check-config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def targets() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) of every query of every dashboard, rows' panels too."""
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        panels = [*board["panels"], *(p for row in board["panels"] for p in row.get("panels", []))]
        for panel in panels:
            for target in panel.get("targets", []):
                out.append((path.name, panel["title"], target.get("expr", "")))
    return out


def may_be_empty() -> dict[tuple[str, str, str], bool]:
    """The dashboard queries allowed to return nothing from the test's stack, as (dashboard,
    panel title, series the query reads): whether each may be empty here."""
    cgroup = CgroupReader().read()  # llmmon's limits are those of the cgroup the tests run in
    allowed = {
        # Kernel time is the saturation panel's fallback for GPUs without GPM; the demo's
        # scripted GPUs all have GPM, so the fallback query is empty by design.
        ("llm-resources.json", "Saturation: SM activity (kernel time where no GPM)",
         "llmmon_gpu_utilization_ratio"): True,
        # XIDs are drawn only where one occurred within the hour (`increase(...) > 0`): empty
        # on a healthy GPU, and here until the demo's one XID (its third GPU sample) has been
        # scraped after its counter's 0; waiting for it would add ~10 s to the test.
        ("llm-resources.json", "Critical XID events", "llmmon_gpu_xid_errors_total"): True,
        # Reasoning models only: none of the stack's endpoints is one.
        ("llm-endpoints.json", "Reasoning models: first thinking and first answer token",
         "llmmon_probe_time_to_first_reasoning_token_seconds"): True,
        ("llm-endpoints.json", "Reasoning models: first thinking and first answer token",
         "llmmon_probe_time_to_first_answer_token_seconds"): True,
        # Perplexity needs a server that returns the logprobs of a text it is shown (OpenAI
        # completions with echo and logprobs); the simulator returns none, so no suite of the
        # stack has perplexity items (an item would score an error, never a figure).
        ("llm-endpoints.json", "Perplexity by suite", "llmmon_eval_score"): True,
        # Model figures only a server's own description gives: the simulator lists its model
        # without llama.cpp's meta (size, n_ctx) or vLLM's max_model_len, and GPU memory is
        # Ollama's /api/ps only. The parameter count and quantisation come from the model's
        # name (team-b's vllm), which is not the server answering, so no answer time either.
        ("llm-endpoints.json", "Models", "llmmon_model_size_bytes"): True,
        ("llm-endpoints.json", "Models", "llmmon_model_vram_bytes"): True,
        ("llm-endpoints.json", "Models", "llmmon_model_context_length_tokens"): True,
        ("llm-endpoints.json", "Models", "llmmon_model_info_timestamp_seconds"): True,
        # Drawn per failed cache probe, and created at the first: the simulator answers every
        # one.
        ("llm-endpoints.json", "Cache probe errors", "llmmon_cache_probe_errors_total"): True,
        # The container's CPU quota and memory limit are exported only when its cgroup sets
        # them; on a machine (or in a container) without limits the series do not exist.
        ("llm-resources.json", "Container CPU against its limit",
         "llmmon_container_cpu_limit_cores"): cgroup is None or cgroup.cpu_limit_cores is None,
        ("llm-resources.json", "Container memory against its limit",
         "llmmon_container_memory_limit_bytes"):
            cgroup is None or cgroup.memory_limit_bytes is None,
    }
    # The model servers' own metrics (vLLM, llama.cpp --metrics, TGI, SGLang): the stack's
    # endpoints are llmmon's simulator, which exports none of them.
    for board, title, expr in targets():
        for server in MODEL_SERVER_SERIES:
            if server in expr and "llmmon_" not in expr:
                allowed[(board, title, server)] = True
    return allowed


MODEL_SERVER_SERIES = ("vllm:", "llamacpp:", "tgi_", "sglang:")


def allowlisted(board: str, title: str, expr: str, allowlist: Iterable[tuple[str, str, str]]
                ) -> bool:
    return any(board == b and title == t and series in expr for b, t, series in allowlist)


def expand(expr: str) -> str:
    """Grafana's template variables as the dashboards would send them: intervals as
    durations, every other variable as the match-all regex."""
    for var, value in (("$__rate_interval", "1m"), ("$__interval", "15s"),
                       ("$__range", "5m")):
        expr = expr.replace(var, value)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


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

    def got(self, alertname: str, **labels: str) -> bool:
        return any(a["labels"].get("alertname") == alertname and a["status"] == "firing"
                   and all(a["labels"].get(k) == v for k, v in labels.items())
                   for a in list(self.alerts))


def podmonitor_job(namespace: str, pod: str, port: int) -> dict[str, Any]:
    """A scrape job as the Prometheus Operator generates one from a PodMonitor: the target
    labels it adds (namespace, pod, container, endpoint = the port's name, job = namespace/
    name) would clash with any llmmon label of the same name; `node` is the shipped
    PodMonitor's relabelling (both Pods here share one node)."""
    relabel = {"namespace": namespace, "pod": pod, "container": "llmmon", "node": "node-1",
               "endpoint": "llmmon-metrics", "job": f"{namespace}/llmmon-sidecar"}
    return {"job_name": f"podMonitor/{namespace}/llmmon-sidecar/0", "scrape_interval": "1s",
            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
            "relabel_configs": [{"target_label": k, "replacement": v} for k, v in relabel.items()]}


def shipped_alertmanager(webhook: Webhook) -> dict[str, Any]:
    """deploy/alertmanager/alertmanager.yml with its inhibitions and routes as shipped, every
    receiver pointed at the test's webhook and every wait cut to a second."""
    config = yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook.update(url=f"http://127.0.0.1:{webhook.port}/", send_resolved=False)
    for route in [config["route"], *config["route"]["routes"]]:
        route.update(group_wait="1s", group_interval="1s")
    return dict(config)


@pytest.fixture
def stack(tmp_path: Path, start_daemon: Callable[..., Daemon], simulator_process: SimProcess
          ) -> Iterator[tuple[str, str, Webhook]]:
    """Two llmmons, as two teams' Pods, scraped every second by Prometheus with the
    Operator's target labels, alerting through the shipped Alertmanager config.

    team-a (`--demo`, for the dashboards): `vllm` refuses connections, with no start-up
    grace; `loading` refuses them too but is within its grace. team-b: `vllm` too, serving
    but slower than its own 10 ms TTFT objective, with a cache probe and a model whose name
    gives its size (as "Llama-3.1-8B" does: the simulator describes no model); `wrong`
    answers wrongly; an evaluation suite runs on both every 2 seconds."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    dead = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
    every = {"provider": "openai", "model": "sim", "interval": "1s", "timeout": "5s"}
    team_a = {"endpoints": [
        {**every, "name": "vllm", "url": dead, "startup_grace": "0s"},
        {**every, "name": "loading", "url": dead},  # the default grace, 10 minutes
    ]}
    team_b = {"endpoints": [
        {**every, "name": "vllm", "url": simulator_process.base, "slo": {"ttft": "10ms"},
         "model": "sim-1.5B-Q4_K_M", "cache_probe": {"every": "2s", "prefix_words": 50}},
        {**every, "name": "wrong", "url": simulator_process.base, "prompts": [
            {"name": "sum", "text": "What is 2 + 3?", "expect": {"number": 6}}]},
    ], "evals": [{"name": "sanity-mini", "every": "2s", "items": [
        {"input": "What is the capital of France?", "reference": "Paris", "scorer": "contains"},
        {"input": "What is 2 + 3?", "reference": "5", "scorer": "number"}]}]}
    for name, config in (("a", team_a), ("b", team_b)):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(config))
    daemon_a = start_daemon("--demo", "-c", str(tmp_path / "a.yaml"))
    daemon_b = start_daemon("-c", str(tmp_path / "b.yaml"))
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

    (tmp_path / "am.yml").write_text(yaml.safe_dump(shipped_alertmanager(webhook)))
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
            "scrape_configs": [podmonitor_job("team-a", "vllm-7d9f4-a1", daemon_a.port),
                               podmonitor_job("team-b", "vllm-5c8e2-b1", daemon_b.port)],
        }))
        prom_port = start("prometheus", f"--config.file={tmp_path}/prometheus.yml",
                          f"--storage.tsdb.path={tmp_path}/tsdb")
        yield f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}", webhook
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        webhook.server.shutdown()
        closed.close()


def query(prometheus: str, expr: str) -> dict[str, Any]:
    """Prometheus's answer; {} while it is still starting (503, not JSON)."""
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    try:
        return dict(response.json())
    except ValueError:
        return {}


def series(prometheus: str, expr: str) -> list[dict[str, Any]]:
    try:
        return list(query(prometheus, expr).get("data", {}).get("result", []))
    except httpx.HTTPError:
        return []


def test_alerts_page_the_right_team_for_the_right_cause(stack: tuple[str, str, Webhook]
                                                        ) -> None:
    """Under the Operator's labels: the same endpoint name in two namespaces stays two
    endpoints; a refused endpoint pages LLMEndpointDown for its team only, and inhibits its
    own burn alert but not the other team's; wrong answers fire the accuracy alert, never
    LLMEndpointDown; an endpoint failing inside its start-up grace pages nothing."""
    prometheus, alertmanager, webhook = stack
    wait_for(lambda: webhook.got("LLMEndpointDown", namespace="team-a", llm_endpoint="vllm"),
             90, "team-a's vllm to page LLMEndpointDown")
    wait_for(lambda: webhook.got("LLMTTFTBudgetBurnFast", namespace="team-b",
                                 llm_endpoint="vllm"), 60,
             "team-b's vllm TTFT burn, not inhibited by team-a's vllm being down")
    wait_for(lambda: webhook.got("LLMAccuracyBudgetBurnFast", namespace="team-b",
                                 llm_endpoint="wrong"), 60, "the accuracy alert for wrong answers")

    def inhibited() -> bool:  # team-a's own burn alert, hidden behind LLMEndpointDown
        response = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=10, params={
            "filter": ['alertname="LLMAvailabilityBudgetBurnFast"', 'namespace="team-a"',
                       'llm_endpoint="vllm"']})
        return any(a["status"]["inhibitedBy"] for a in response.json())

    wait_for(inhibited, 30, "team-a's availability burn to be inhibited by LLMEndpointDown")

    # Two endpoints named vllm, never merged: one all errors, the other none.
    ratios = {r["metric"]["namespace"]: float(r["value"][1]) for r in series(
        prometheus, 'llmmon:slo_error_ratio:rate5m{objective="availability",llm_endpoint="vllm"}')}
    assert ratios == {"team-a": 1.0, "team-b": 0.0}
    assert not series(prometheus, 'llmmon_probe_success{exported_endpoint!=""}')

    # As many probes failed inside the grace as it took team-a's vllm to page: none counted.
    starting = series(prometheus, 'llmmon_probe_slo_events_total{llm_endpoint="loading",'
                                  'objective="availability",result="starting"} > 5')
    assert starting, "the loading endpoint's failures are counted as starting"
    assert not series(prometheus, 'ALERTS{llm_endpoint="loading"}')
    assert not series(prometheus, 'ALERTS{alertname="LLMEndpointDown",llm_endpoint="wrong"}')
    assert not webhook.got("LLMEndpointDown", llm_endpoint="wrong")
    assert not webhook.got("LLMEndpointDown", namespace="team-b")


def test_every_dashboard_query_returns_data(stack: tuple[str, str, Webhook]) -> None:
    """Every dashboard query is valid PromQL and returns data from the live stack, but for
    those allowed to be empty (named in may_be_empty, with the reason)."""
    prometheus = stack[0]
    allowed = may_be_empty()
    stale = [key for key in allowed if not any(allowlisted(*query, [key]) for query in targets())]
    assert not stale, f"allowed to be empty, but no longer on a dashboard: {stale}"
    may_be = [key for key, empty_here in allowed.items() if empty_here]

    # data from every part: probes, the load probe (first burst after ~5 s), GPUs, processes
    wait_for(lambda: bool(series(prometheus, "llmmon_load_last_run_timestamp_seconds"))
             and bool(series(prometheus, 'llmmon:slo_burn_rate:rate5m')), 60,
             "Prometheus to have scraped probes and a load burst and recorded burn rates")
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
                if not allowlisted(board, title, expr, may_be)
                and not series(prometheus, expand(expr))]

    # A series can trail the ones waited for by a scrape or two: the others are asked again.
    if late := [query for query in empty if not allowlisted(*query, may_be)]:
        wait_for(lambda: not unexpected(), 30, f"data for {late}")
