"""The bundled Grafana dashboards, statically: what grafana/build_dashboards.py generates (read
in-process, so a regression in the generator fails the test that names it, not only the
"out of date" one) and the JSON files it wrote. No Grafana, no Prometheus, no network: the
queries are run against a real Prometheus in tests/test_observability.py."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "grafana/build_dashboards.py"
ENDPOINTS, RESOURCES = "llm-endpoints.json", "llm-resources.json"

Panel = dict[str, Any]
Target = dict[str, Any]

SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\{([^{}]*)\}")
MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
# A metric name of one of the families the dashboards read, not followed by matchers.
BARE_NAME = re.compile(r'(?<![A-Za-z0-9_:"$])((?:llmmon|process_|vllm:|sglang:|llamacpp:|tgi_)'
                       r"[A-Za-z0-9_:]*)(?![A-Za-z0-9_:])(?!\s*\{)")
PROBE_FAMILY = re.compile(r"^(llmmon_probe_|llmmon_load_|llmmon_endpoint_info$|llmmon:slo_)")
MODEL_SERVER = re.compile(r"^(vllm:|sglang:|llamacpp:|tgi_)")
# Gauges that are shares (0..1) by name, or by their server's definition.
# `and on (...) other{...}`: keeps the left side's values, whatever the right side holds.
FILTER = re.compile(r"\s+(and|unless) on \([^)]*\) [A-Za-z_:][A-Za-z0-9_:]*\{[^{}]*\}")
RATIO_NAME = re.compile(r"(_ratio|_perc)$|^sglang:(token_usage|cache_hit_rate)$")


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_dashboards", GENERATOR)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def boards() -> dict[str, dict[str, Any]]:
    """The dashboards as the generator builds them now."""
    rendered: dict[str, str] = load_generator().render()
    return {name: json.loads(text) for name, text in rendered.items()}


def panels(board: dict[str, Any]) -> Iterator[Panel]:
    for panel in board["panels"]:
        if panel["type"] != "row":
            yield panel


def targets(boards: dict[str, dict[str, Any]]) -> Iterator[tuple[str, Panel, Target]]:
    for name, board in boards.items():
        for panel in panels(board):
            for target in panel["targets"]:
                yield name, panel, target


def selectors(expr: str) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    """(metric name, {label: (operator, value)}) of every vector selector."""
    return [(name, {label: (op, value) for label, op, value in MATCHER.findall(body)})
            for name, body in SELECTOR.findall(expr)]


def without_matchers(expr: str) -> str:
    return SELECTOR.sub(lambda m: m.group(1), expr)


def is_ratio(expr: str) -> bool:
    """A share of 0..1: a division, a gauge that is a share by its name, or CPU (or other)
    seconds per second."""
    expr = FILTER.sub("", expr)
    body = without_matchers(expr)
    if "/" in body:
        return True
    names = [name for name, _ in selectors(expr)]
    return bool(names) and all(RATIO_NAME.search(name) or (name.endswith("_seconds_total")
                                                             and "rate(" in body)
                               for name in names)


def field_config(panel: Panel, target: Target, prop: str) -> Any:
    """A property (unit, mappings) as it applies to one query's values: the panel's default,
    unless an override picks that query out (by refId, or a table column by its name)."""
    value = panel["fieldConfig"]["defaults"].get(prop)
    ref = target["refId"]
    names = {f"Value #{ref}"}
    for transformation in panel.get("transformations", []):
        if transformation["id"] == "organize":
            renamed = transformation["options"]["renameByName"].get(f"Value #{ref}")
            names.add(renamed)
    for override in panel["fieldConfig"]["overrides"]:
        matcher = override["matcher"]
        if (matcher["id"] == "byName" and matcher["options"] in names) or (
                matcher["id"] == "byFrameRefID" and matcher["options"] == ref):
            for p in override["properties"]:
                if p["id"] == prop:
                    value = p["value"]
    return value


def value_mapping(mappings: list[dict[str, Any]], value: str) -> dict[str, Any]:
    for mapping in mappings or []:
        if mapping["type"] == "value" and value in mapping["options"]:
            return dict(mapping["options"][value])
        if mapping["type"] == "range" and (
                mapping["options"]["from"] <= float(value) <= mapping["options"]["to"]):
            return dict(mapping["options"]["result"])
    return {}


def reads(target: Target, family: str) -> bool:
    return any(name == family for name, _ in selectors(target["expr"]))


# --- generated, well formed -------------------------------------------------------------


def test_json_files_are_current(boards: dict[str, dict[str, Any]]) -> None:
    """The committed JSON is what the generator writes, and `--check` says so."""
    for name, board in boards.items():
        committed = json.loads((ROOT / "grafana/dashboards" / name).read_text(encoding="utf-8"))
        assert committed == board, f"{name} is out of date: run python {GENERATOR}"
    checked = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert sorted(boards) == [ENDPOINTS, RESOURCES]
    assert boards[ENDPOINTS]["uid"] == "llmmon-endpoints"
    assert boards[RESOURCES]["uid"] == "llmmon-resources"


def test_ids_unique_and_panels_do_not_overlap(boards: dict[str, dict[str, Any]]) -> None:
    for name, board in boards.items():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), name
        cells: dict[tuple[int, int], str] = {}
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, (name, panel["title"])
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in cells, (name, panel["title"], cells.get((x, y)))
                    cells[x, y] = panel["title"]


def test_every_panel_is_described_and_has_a_unit_and_the_datasource_variable(
        boards: dict[str, dict[str, Any]]) -> None:
    """A description that says what the panel shows and what is normal (not a stub), the
    data source through the variable, a unit, and a query on every target."""
    for name, board in boards.items():
        titles = [panel["title"] for panel in panels(board)]
        assert len(titles) == len(set(titles)), f"{name}: titles repeat"
        for panel in panels(board):
            where = (name, panel["title"])
            assert len(panel["description"]) >= 60, where
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert panel["fieldConfig"]["defaults"]["unit"], where
            assert panel["targets"], where
            for target in panel["targets"]:
                assert target["expr"].strip(), where
                assert target["datasource"]["uid"] == "${datasource}", where


def test_variables_and_how_queries_use_them(boards: dict[str, dict[str, Any]]) -> None:
    """The variables exist, llm_endpoint comes from llmmon_endpoint_info's own label, and
    every variable a query names is defined and matched as a regex (=~), so multi-value and
    All selections (and the end-to-end test's `.*`) work."""
    required = {ENDPOINTS: {"datasource", "namespace", "job", "instance", "llm_endpoint",
                            "model", "min_step"},
                RESOURCES: {"datasource", "namespace", "job", "instance", "gpu"}}
    for name, board in boards.items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert required[name] <= set(variables), name
        assert "endpoint" not in variables, name
        for var in variables.values():
            if var["type"] == "query":
                assert (var["includeAll"], var["multi"], var["allValue"]) == (True, True, ".*")
        for panel in panels(board):
            for target in panel["targets"]:
                used = set(re.findall(r"\$\{?([A-Za-z][A-Za-z0-9_]*)\}?", target["expr"]))
                assert used <= set(variables), (panel["title"], used - set(variables))
                matched = set(re.findall(r'=~"\$([A-Za-z][A-Za-z0-9_]*)"', target["expr"]))
                assert used == matched, (panel["title"], "not as =~\"$var\":", used - matched)
    llm_endpoint = next(v for v in boards[ENDPOINTS]["templating"]["list"]
                        if v["name"] == "llm_endpoint")
    assert re.fullmatch(r"label_values\(llmmon_endpoint_info\{.*\}, llm_endpoint\)",
                        llm_endpoint["definition"])


def test_no_query_uses_the_operators_endpoint_label(boards: dict[str, dict[str, Any]]) -> None:
    """Under a PodMonitor `endpoint` is the scrape port's name: never matched, grouped by or
    drawn; llmmon's own label is llm_endpoint."""
    for _, panel, target in targets(boards):
        expr = target["expr"]
        for _, matchers in selectors(expr):
            assert "endpoint" not in matchers, (panel["title"], expr)
        for _, labels in GROUPING.findall(expr):
            assert "endpoint" not in re.split(r"\s*,\s*", labels.strip()), (panel["title"], expr)
        assert not re.search(r"\{\{\s*endpoint\s*\}\}", target["legendFormat"]), panel["title"]
        assert "$endpoint" not in expr, panel["title"]


def test_every_selector_names_its_targets(boards: dict[str, dict[str, Any]]) -> None:
    """Each series is selected by the target labels of the selected llmmon (namespace, job,
    instance), probe series also by llm_endpoint; model-server series by namespace and, where
    the server labels its model, by $model. No metric is read without matchers."""
    for _, panel, target in targets(boards):
        expr = target["expr"]
        assert not BARE_NAME.search(expr), (panel["title"], BARE_NAME.findall(expr))
        for name, matchers in selectors(expr):
            where = (panel["title"], name)
            if MODEL_SERVER.match(name):
                assert matchers.get("namespace") == ("=~", "$namespace"), where
                if name.startswith(("vllm:", "sglang:")):
                    assert matchers.get("model_name") == ("=~", "$model"), where
                continue
            assert name.startswith(("llmmon", "process_")), where
            for label in ("namespace", "job", "instance"):
                assert matchers.get(label) == ("=~", f"${label}"), (where, label)
            if PROBE_FAMILY.match(name):
                assert matchers.get("llm_endpoint") == ("=~", "$llm_endpoint"), where
            if name.startswith("llmmon_gpu_") and "gpu" in name and name != "llmmon_gpu_up":
                assert matchers.get("gpu", ("=~", "$gpu")) == ("=~", "$gpu"), where


def test_process_series_are_llmmons_own(boards: dict[str, dict[str, Any]]) -> None:
    """process_* is exported by every Python or Go target: with job All it would draw the
    model server's and Prometheus's own, so it is joined to llmmon_build_info."""
    for _, panel, target in targets(boards):
        if re.search(r"\bprocess_", without_matchers(target["expr"])):
            assert re.search(r"\band on \(namespace, job, instance\) llmmon_build_info\{",
                             target["expr"]), panel["title"]


# --- counters, windows, units --------------------------------------------------------------


def test_counters_are_rates_or_bars_that_do_not_overlap(boards: dict[str, dict[str, Any]]
                                                        ) -> None:
    """increase() over $__rate_interval (longer than the step) counts events again at every
    step; rate() over $__interval has gaps when a step holds fewer than two scrapes. Counts
    per step are increase over $__interval, drawn as bars on a panel with a minimum interval;
    increase over a fixed window only as a ratio of two such increases, or over the range."""
    for _, panel, target in targets(boards):
        expr, where = target["expr"], panel["title"]
        assert not re.search(r"increase\([^\[]*\[\$__rate_interval\]", expr), where
        assert not re.search(r"(?<!in)rate\([^\[]*\[\$__interval\]", expr), where
        windows = re.findall(r"increase\([^\[]*\[([^\]]+)\]", expr)
        for window in windows:
            if window == "$__interval":
                custom = panel["fieldConfig"]["defaults"]["custom"]
                assert (panel["type"], custom["drawStyle"]) == ("timeseries", "bars"), where
                assert panel.get("interval"), where
            elif window == "$__range":
                assert target["instant"], where
            else:
                assert "/" in without_matchers(expr), (where, window)
        if "$__range" in expr:
            assert (target["instant"], target["range"]) == (True, False), where


def test_probe_latency_windows_span_several_probes(boards: dict[str, dict[str, Any]]) -> None:
    """Probe histograms get one observation per probe (every 30 s by default, often a minute
    or more): their rates and quantiles over $__rate_interval sit on panels whose minimum
    interval is $min_step, a variable that defaults to 2m, so a window holds two probes of an
    endpoint probed every minute."""
    variables = {v["name"]: v for v in boards[ENDPOINTS]["templating"]["list"]}
    assert variables["min_step"]["current"]["value"] == "2m"
    histograms = 0
    for _, panel, target in targets(boards):
        for name, _ in selectors(target["expr"]):
            if PROBE_FAMILY.match(name) and name.endswith("_bucket") and not target["instant"]:
                histograms += 1
                assert "[$__rate_interval]" in target["expr"], panel["title"]
                assert panel.get("interval") == "$min_step", panel["title"]
    assert histograms >= 10


def test_percent_axes_carry_ratios(boards: dict[str, dict[str, Any]]) -> None:
    """A percentunit axis (or table column) only for shares of 0..1, and every share on one:
    a bare share gauge (the load probe's error ratio was drawn on a seconds axis), or one
    family's events divided by the same family's (successes by probes, passed checks by
    checks)."""
    shares = 0
    for _, panel, target in targets(boards):
        unit = field_config(panel, target, "unit")
        expr, where = target["expr"], (panel["title"], target["refId"])
        if unit == "percentunit":
            shares += 1
            assert is_ratio(expr), where
        body = without_matchers(expr)
        names = [name for name, _ in selectors(expr)]
        if names and all(RATIO_NAME.search(n) for n in names) and not re.search(
                r"[-+*/]|rate\(|increase\(|\bunless\b", body):
            assert unit == "percentunit", where
        if "/" in body and len(set(names)) < len(names) and "histogram_quantile" not in body:
            assert unit == "percentunit", (where, "a share of one family's events")
    assert shares >= 20
    load = [(panel, target) for _, panel, target in targets(boards)
            if reads(target, "llmmon_load_error_ratio")]
    assert load
    for panel, target in load:
        assert field_config(panel, target, "unit") == "percentunit", panel["title"]


def test_status_panels_map_their_values(boards: dict[str, dict[str, Any]]) -> None:
    """Success 1 = OK (green), 0 = failing (red); HTTP status 0 = no response (red), 2xx green,
    4xx/5xx orange/red; starting 1 = starting: on every panel or column that shows them."""
    seen = set()
    for _, panel, target in targets(boards):
        mappings = field_config(panel, target, "mappings")
        where = panel["title"]
        if reads(target, "llmmon_probe_success"):
            seen.add("success")
            ok, failing = value_mapping(mappings, "1"), value_mapping(mappings, "0")
            assert (ok.get("text"), ok.get("color")) == ("OK", "green"), where
            assert (failing.get("text"), failing.get("color")) == ("failing", "red"), where
        if reads(target, "llmmon_probe_http_status_code"):
            seen.add("http")
            none = value_mapping(mappings, "0")
            assert (none["text"], none["color"]) == ("no response", "red"), where
            for code in ("200", "204", "299"):
                assert value_mapping(mappings, code)["color"] == "green", (where, code)
            for code in ("400", "404", "429", "500", "503"):
                assert value_mapping(mappings, code)["color"] in ("orange", "red"), (where, code)
            assert value_mapping(mappings, "503")["color"] == "red", where
        if reads(target, "llmmon_probe_starting"):
            seen.add("starting")
            assert value_mapping(mappings, "1")["text"] == "starting", where
    assert seen == {"success", "http", "starting"}


# --- what the boards must show ----------------------------------------------------------


def board_exprs(board: dict[str, Any]) -> str:
    return "\n".join(t["expr"] for p in panels(board) for t in p["targets"])


def test_fleet_table(boards: dict[str, dict[str, Any]]) -> None:
    """Instant table queries, merged into one row per endpoint and renamed, with the status,
    success ratio, p90 TTFT, age of the last success, cost and start-up state."""
    table = next(p for p in panels(boards[ENDPOINTS]) if p["type"] == "table"
                 and any(reads(t, "llmmon_probe_success") for t in p["targets"]))
    assert all(t["instant"] and t["format"] == "table" for t in table["targets"])
    transformations = [t["id"] for t in table["transformations"]]
    assert transformations == ["merge", "organize"]
    organize = table["transformations"][1]["options"]
    assert organize["excludeByName"].get("Time") is True
    refs = {f"Value #{t['refId']}" for t in table["targets"]}
    assert refs <= set(organize["renameByName"])
    columns = {field_config(table, t, "unit"): t["expr"] for t in table["targets"]}
    exprs = "\n".join(t["expr"] for t in table["targets"])
    for needed in (r"llmmon_probe_success\{", r"llmmon_probe_starting\{",
                   r'outcome="success"\}\[\$__range\]\)\) / ',
                   r"histogram_quantile\(0\.9, .*llmmon_probe_time_to_first_token_seconds_bucket",
                   r"time\(\) - .*llmmon_probe_last_success_timestamp_seconds",
                   r"increase\(llmmon_probe_cost_usd_total\{.*\}\[\$__range\]"):
        assert re.search(needed, exprs), needed
    assert {"percentunit", "s", "currencyUSD"} <= set(columns)
    keys = {label for t in table["targets"] for _, labels in GROUPING.findall(t["expr"])
            for label in re.split(r"\s*,\s*", labels)}
    assert {"namespace", "job", "llm_endpoint"} <= keys


def test_slo_burn_rate_and_error_budget(boards: dict[str, dict[str, Any]]) -> None:
    exprs = board_exprs(boards[ENDPOINTS])
    assert re.search(r"llmmon:slo_error_ratio:rate1h\{[^}]*\} / on \([^)]*objective[^)]*\) "
                     r"group_left \(\) \(\(1 - llmmon_probe_slo_objective_ratio\{", exprs)
    budget = next(t for p in panels(boards[ENDPOINTS]) for t in p["targets"]
                  if reads(t, "llmmon_probe_slo_events_total") and "$__range" in t["expr"])
    assert 'result="bad"' in budget["expr"]
    assert "llmmon_probe_slo_objective_ratio" in budget["expr"]


def test_heatmaps_and_reasoning_latency(boards: dict[str, dict[str, Any]]) -> None:
    heatmaps = [p for p in panels(boards[ENDPOINTS]) if p["type"] == "heatmap"]
    read = set()
    for panel in heatmaps:
        (target,) = panel["targets"]
        assert target["format"] == "heatmap", panel["title"]
        match = re.fullmatch(r"sum by \(le\) \(rate\((\w+)_bucket\{.*\}\[\$__rate_interval\]\)\)",
                             target["expr"])
        assert match, panel["title"]
        read.add(match.group(1))
        assert panel["options"]["calculate"] is False
    assert read == {"llmmon_probe_time_to_first_token_seconds",
                    "llmmon_probe_inter_token_latency_seconds"}
    exprs = board_exprs(boards[ENDPOINTS])
    for family in ("llmmon_probe_time_to_first_reasoning_token_seconds_bucket",
                   "llmmon_probe_time_to_first_answer_token_seconds_bucket"):
        assert family in exprs


def test_model_server_row(boards: dict[str, dict[str, Any]]) -> None:
    """Queue, batch, KV cache, prefix cache and preemptions of vLLM, llama.cpp, TGI and SGLang,
    under their own metric names; the client-against-server TTFT never mixes servers of
    other namespaces or models (its vLLM side is selected like every other)."""
    exprs = board_exprs(boards[ENDPOINTS])
    for series in ("vllm:num_requests_waiting", "vllm:num_requests_running",
                   "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc",
                   "vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total",
                   "vllm:num_preemptions_total", "vllm:time_to_first_token_seconds_bucket",
                   "llamacpp:requests_processing", "llamacpp:requests_deferred",
                   "llamacpp:kv_cache_usage_ratio", "tgi_queue_size", "tgi_batch_current_size",
                   "sglang:num_queue_reqs", "sglang:num_running_reqs", "sglang:token_usage",
                   "sglang:cache_hit_rate"):
        assert f"{series}{{" in exprs, series
    model = next(v for v in boards[ENDPOINTS]["templating"]["list"] if v["name"] == "model")
    assert "model_name" in model["definition"]
    assert "$namespace" in model["definition"]


def test_host_cpu_is_counted_once_per_host(boards: dict[str, dict[str, Any]]) -> None:
    """Every llmmon sidecar on a node reports the node's CPU: summing across Pods multiplies
    it. Folded per node (or per instance without a node label) before any sum."""
    panel = next(p for p in panels(boards[RESOURCES]) if p["title"] == "CPU by mode")
    (target,) = panel["targets"]
    expr = target["expr"]
    assert re.search(r"max by \(node, mode\) \(rate\(llmmon_host_cpu_seconds_total\{[^}]*"
                     r'node!=""', expr), expr
    assert re.search(r"max by \(instance, mode\) \(rate\(llmmon_host_cpu_seconds_total\{[^}]*"
                     r'node=""', expr), expr
    assert not re.search(r"sum by \(mode\) \(rate\(", expr), expr


def test_container_throttling_never_divides_by_zero(boards: dict[str, dict[str, Any]]) -> None:
    panel = next(p for p in panels(boards[RESOURCES])
                 if any(reads(t, "llmmon_container_cpu_throttled_periods_total")
                        for t in p["targets"]))
    (target,) = panel["targets"]
    assert re.search(r"/ \(rate\(llmmon_container_cpu_periods_total\{[^}]*\}"
                     r"\[\$__rate_interval\]\) > 0\)", target["expr"]), target["expr"]


def test_boards_link_to_each_other(boards: dict[str, dict[str, Any]]) -> None:
    """Dashboard links that keep the time range and the variables."""
    for name, other in ((ENDPOINTS, RESOURCES), (RESOURCES, ENDPOINTS)):
        links = boards[name]["links"]
        to_other = [link for link in links if link.get("url") == f"/d/{boards[other]['uid']}"]
        assert to_other, name
        assert all(link["keepTime"] and link["includeVars"] for link in to_other), name


def test_every_insight_family_is_on_a_panel(boards: dict[str, dict[str, Any]]) -> None:
    """Evals, model, cache, network and energy families are each read by a query."""
    from llmmon.metrics.insight_families import INSIGHT_FAMILIES

    queried = " ".join(t.get("expr", "") for _, _, t in targets(boards))
    missing = [f.name for f in INSIGHT_FAMILIES
               if not re.search(re.escape(f.name) + r"(_bucket|_sum|_count)?\b", queried)]
    assert missing == []
