"""Builds grafana/dashboards/*.json (Grafana's dashboard JSON model) from the panel lists
below, so every query is written once, in PromQL, next to its title, unit and description.

    python grafana/build_dashboards.py        # rewrite the JSON files
    python grafana/build_dashboards.py --check  # exit 1 if they are out of date (a test runs it)

Conventions every query here follows (tests/test_dashboards.py holds them):

- Every llmmon series is selected by `namespace`, `job` and `instance` (the labels Prometheus
  and the Prometheus Operator put on targets), and every probe series also by `llm_endpoint`.
  Never by `endpoint`: under a PodMonitor that label is the Operator's port name.
- Counters are drawn as rates (`rate(...[$__rate_interval])`), or as counts per bar with
  `increase(...[$__interval])` on a panel whose minimum interval makes each bar's window the
  step itself (bars never overlap, so they add up to the real count). `increase` over
  `$__rate_interval` is never used: its window is longer than the step, so consecutive
  points count the same events again.
- Probe latency (histograms fed once per probe, every 30 s by default) is windowed by
  `$__rate_interval` on panels whose minimum interval is `$min_step` (2 m by default): the
  window is then at least min_step plus a scrape interval, so it holds two probes or more of an
  endpoint probed every minute and the lines have no gaps. Endpoints probed less often want a
  larger `min_step` (a dashboard variable).
- Model-server series (vLLM, llama.cpp, TGI, SGLang) come from the servers' own /metrics,
  not from llmmon: they are selected by `namespace` (the sidecar shares its model server's
  namespace) and, where the server labels them (vLLM, SGLang), by `model_name=~"$model"`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
NS = 'namespace=~"$namespace"'
SEL = NS + ', job=~"$job", instance=~"$instance"'
EP = SEL + ', llm_endpoint=~"$llm_endpoint"'
GPU = SEL + ', gpu=~"$gpu"'
RI = "$__rate_interval"
BAR = "$__interval"  # the window of a bar: the panel's step, see Board.bars
MIN_STEP = "$min_step"
BY = "namespace, job, llm_endpoint"  # one endpoint of one llmmon deployment
IDENT = BY + ", provider, model"  # the same, with its identity (the fleet table's key)
E = "{{llm_endpoint}} ({{job}})"  # its legend: two deployments may name endpoints alike
# Model servers: their own series, in the namespace of the llmmon that probes them.
SRV = NS
SRV_MODEL = NS + ', model_name=~"$model"'  # vLLM and SGLang label every series with model_name
SRV_BY = "namespace, pod, instance, model_name"
HOST = "{{node}}{{instance}}"  # per_host() keeps one of the two

UID = {"endpoints": "llmmon-endpoints", "resources": "llmmon-resources"}


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False
    format: str = "time_series"  # or "table", "heatmap"


Target = tuple[str, str] | Query
Thresholds = list[tuple[float | None, str]]


def _query(target: Target) -> Query:
    return target if isinstance(target, Query) else Query(*target)


def value_map(values: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """A value mapping: {value: (text, color)}."""
    return {"type": "value", "options": {
        value: {"text": text, "color": color, "index": i}
        for i, (value, (text, color)) in enumerate(values.items())}}


def range_map(low: float, high: float, color: str, index: int) -> dict[str, Any]:
    """A range mapping that colours the value and keeps its text."""
    return {"type": "range", "options": {"from": low, "to": high,
                                         "result": {"color": color, "index": index}}}


STATUS_MAP = [value_map({"1": ("OK", "green"), "0": ("failing", "red")})]
STARTING_MAP = [value_map({"1": ("starting", "blue"), "0": ("no", "text")})]
HTTP_MAP = [value_map({"0": ("no response", "red")}), range_map(200, 299, "green", 1),
            range_map(300, 399, "orange", 2), range_map(400, 499, "orange", 3),
            range_map(500, 599, "red", 4)]
UP_MAP = [value_map({"1": ("up", "green"), "0": ("down", "red")})]
RELOAD_MAP = [value_map({"1": ("loaded", "green"), "0": ("rejected", "red")})]
BURN = [(None, "green"), (1, "yellow"), (6, "orange"), (14.4, "red")]


class Board:
    """Lays panels out left to right, 24 columns wide, rows of equal height."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = 0
        self.row_height = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append({"type": "row", "title": title, "collapsed": False, "panels": [],
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}})
        self.y += 1

    def _newline(self) -> None:
        if self.x:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0

    def _place(self, w: int, h: int) -> dict[str, int]:
        if self.x + w > 24:
            self._newline()
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_height = max(self.row_height, h)
        return pos

    def add(self, kind: str, title: str, targets: list[Target], unit: str, *,
            description: str, w: int = 8, h: int = 8, thresholds: Thresholds | None = None,
            mappings: list[dict[str, Any]] | None = None, interval: str | None = None,
            minimum: float | None = None, maximum: float | None = None,
            custom: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
            overrides: list[dict[str, Any]] | None = None,
            transformations: list[dict[str, Any]] | None = None,
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
        steps = [{"color": color, "value": value}
                 for value, color in (thresholds or [(None, "green")])]
        defaults: dict[str, Any] = {
            "unit": unit, "thresholds": {"mode": "absolute", "steps": steps},
            "mappings": mappings or [],
            "color": {"mode": "thresholds" if kind in ("stat", "bargauge") else "palette-classic"},
        }
        if minimum is not None:
            defaults["min"] = minimum
        if maximum is not None:
            defaults["max"] = maximum
        if custom is not None:
            defaults["custom"] = custom
        queries = [_query(t) for t in targets]
        panel: dict[str, Any] = {
            "type": kind, "title": title, "description": " ".join(description.split()),
            "datasource": DS, "gridPos": self._place(w, h),
            "targets": [self._target(q, chr(ord("A") + i)) for i, q in enumerate(queries)],
            "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
            "options": options or {},
        }
        if interval:
            panel["interval"] = interval
        if transformations:
            panel["transformations"] = transformations
        panel.update(extra or {})
        self.panels.append(panel)
        return panel

    @staticmethod
    def _target(q: Query, ref: str) -> dict[str, Any]:
        return {"datasource": DS, "expr": q.expr, "legendFormat": q.legend, "refId": ref,
                "instant": q.instant, "range": not q.instant, "format": q.format}

    def series(self, title: str, targets: list[Target], unit: str, *, description: str,
               w: int = 12, h: int = 8, thresholds: Thresholds | None = None,
               interval: str | None = None, minimum: float | None = None,
               maximum: float | None = None, overrides: list[dict[str, Any]] | None = None,
               mappings: list[dict[str, Any]] | None = None, stacked: bool = False,
               repeat: str | None = None) -> None:
        """Lines. Ratios (percentunit) start at 0. ``stacked``: areas stacked on each other
        (parts of one whole); ``repeat``: one copy of the panel per value of that variable,
        side by side (so a stack never adds up two endpoints)."""
        if unit == "percentunit" and minimum is None:
            minimum = 0
        custom: dict[str, Any] = {"drawStyle": "line", "lineWidth": 1,
                                  "fillOpacity": 60 if stacked else 10,
                                  "showPoints": "never", "spanNulls": False,
                                  "thresholdsStyle": {"mode": "line" if thresholds else "off"}}
        if stacked:
            custom["stacking"] = {"mode": "normal", "group": "A"}
        self.add("timeseries", title, targets, unit, description=description, w=w, h=h,
                 thresholds=thresholds, interval=interval, minimum=minimum, maximum=maximum,
                 overrides=overrides, mappings=mappings, custom=custom, options=_legend(),
                 extra={"repeat": repeat, "repeatDirection": "h", "maxPerRow": 4}
                 if repeat else None)

    def bars(self, title: str, targets: list[Target], unit: str, *, description: str,
             interval: str, w: int = 12, h: int = 8, thresholds: Thresholds | None = None
             ) -> None:
        """Counts per step: `increase(...[$__interval])`, one bar per step, stacked. The
        panel's minimum interval keeps a bar's window to two scrapes or more; the step and
        the window are both $__interval, so the bars tile the time axis without overlap."""
        self.add("timeseries", title, targets, unit, description=description, w=w, h=h,
                 thresholds=thresholds, interval=interval, minimum=0,
                 custom={"drawStyle": "bars", "lineWidth": 1, "fillOpacity": 80,
                         "barAlignment": -1, "showPoints": "never",
                         "stacking": {"mode": "normal", "group": "A"},
                         "thresholdsStyle": {"mode": "line" if thresholds else "off"}},
                 options=_legend())

    def stat(self, title: str, targets: list[Target], unit: str, *, description: str,
             w: int = 4, h: int = 5, thresholds: Thresholds | None = None,
             mappings: list[dict[str, Any]] | None = None, background: bool = False) -> None:
        """The current value of each series (instant queries)."""
        self.add("stat", title, [Query(q.expr, q.legend, instant=True)
                                 for q in map(_query, targets)], unit,
                 description=description, w=w, h=h, thresholds=thresholds, mappings=mappings,
                 options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                            "values": False},
                          "colorMode": "background" if background else "value",
                          "graphMode": "none", "textMode": "value_and_name",
                          "justifyMode": "auto", "orientation": "auto"})

    def heatmap(self, title: str, metric: str, unit: str, *, description: str,
                w: int = 12, h: int = 8) -> None:
        """Probes per second in each latency bucket, from the histogram's buckets."""
        self.add("heatmap", title, [Query(
            f"sum by (le) (rate({metric}_bucket{{{EP}}}[{RI}]))", "{{le}}", format="heatmap")],
            "short", description=description, w=w, h=h, interval=MIN_STEP,
            options={"calculate": False, "cellGap": 1, "yAxis": {"unit": unit,
                                                                 "axisPlacement": "left"},
                     "rowsFrame": {"layout": "auto"},
                     "color": {"mode": "scheme", "scheme": "Oranges", "scale": "exponential",
                               "exponent": 0.5, "steps": 64, "fill": "dark-orange"},
                     "filterValues": {"le": 1e-9}, "showValue": "never",
                     "tooltip": {"mode": "single", "yHistogram": True, "showColorScale": False},
                     "legend": {"show": True}, "exemplars": {"color": "rgba(255,0,255,0.7)"}})

    def table(self, title: str, columns: list[Column], *, description: str, w: int = 24,
              h: int = 8, key: dict[str, str], sort: str) -> None:
        """Instant queries, one per column, merged into one row per key (label values
        common to every query), then renamed and ordered."""
        rename = {label: name for label, name in key.items()}
        hidden = {f"Value #{chr(ord('A') + i)}": True for i, c in enumerate(columns) if c.hidden}
        overrides = []
        for i, column in enumerate(columns):
            rename[f"Value #{chr(ord('A') + i)}"] = column.name
            properties: list[dict[str, Any]] = [{"id": "unit", "value": column.unit}]
            if column.mappings:
                properties.append({"id": "mappings", "value": column.mappings})
            if column.thresholds:
                properties.append({"id": "thresholds", "value": {"mode": "absolute", "steps": [
                    {"color": color, "value": value} for value, color in column.thresholds]}})
            if column.mappings or column.thresholds:
                properties.append({"id": "custom.cellOptions",
                                   "value": {"type": column.cell, "mode": "basic"}})
            overrides.append({"matcher": {"id": "byName", "options": column.name},
                              "properties": properties})
        self.add("table", title, [Query(c.expr, instant=True, format="table") for c in columns],
                 "short", description=description, w=w, h=h, overrides=overrides,
                 custom={"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True},
                 options={"showHeader": True, "cellHeight": "sm",
                          "sortBy": [{"displayName": sort, "desc": False}],
                          "footer": {"show": False, "reducer": ["sum"], "fields": ""}},
                 transformations=[
                     {"id": "merge", "options": {}},
                     {"id": "organize", "options": {
                         "excludeByName": {"Time": True, **hidden},
                         "renameByName": rename,
                         "indexByName": {name: i for i, name in enumerate(
                             list(key) + [f"Value #{chr(ord('A') + i)}"
                                          for i in range(len(columns))])},
                         "includeByName": {}}}])

    def xychart(self, title: str, x: Column, ys: list[Column], *, description: str,
                w: int = 12, h: int = 8) -> None:
        """One point per row and y column: instant table queries merged into one row per key
        (the label values common to all), x against each y. The options are Grafana 10's
        xychart (`seriesMapping`, `series[].x`/`.y` by field name); Grafana 11.1 and later
        migrate them when they load a panel saved without a pluginVersion, as this one is."""
        columns = [x, *ys]
        names = {f"Value #{chr(ord('A') + i)}": c.name for i, c in enumerate(columns)}
        self.add("xychart", title, [Query(c.expr, instant=True, format="table")
                                    for c in columns],
                 ys[0].unit, description=description, w=w, h=h,
                 overrides=[{"matcher": {"id": "byName", "options": c.name},
                             "properties": [{"id": "unit", "value": c.unit}]} for c in columns],
                 custom={"show": "points", "pointSize": {"fixed": 8}, "axisPlacement": "auto",
                         "axisLabel": "", "lineWidth": 1, "fillOpacity": 50,
                         "hideFrom": {"legend": False, "tooltip": False, "viz": False}},
                 options={"seriesMapping": "manual", "dims": {"frame": 0},
                          "series": [{"name": y.name, "frame": 0, "x": x.name, "y": y.name}
                                     for y in ys],
                          "legend": {"showLegend": True, "displayMode": "list",
                                     "placement": "bottom", "calcs": []},
                          "tooltip": {"mode": "single", "sort": "none"}},
                 transformations=[
                     {"id": "merge", "options": {}},
                     {"id": "organize", "options": {"excludeByName": {"Time": True},
                                                    "renameByName": names,
                                                    "indexByName": {}, "includeByName": {}}}])

    def bargauge(self, title: str, targets: list[Target], unit: str, *, description: str,
                 w: int = 8, h: int = 8, thresholds: Thresholds | None = None,
                 minimum: float | None = None, maximum: float | None = None,
                 overrides: list[dict[str, Any]] | None = None) -> None:
        self.add("bargauge", title, [Query(q.expr, q.legend, instant=True)
                                     for q in map(_query, targets)], unit,
                 description=description, w=w, h=h, thresholds=thresholds, minimum=minimum,
                 maximum=maximum, overrides=overrides,
                 options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                            "values": False},
                          "orientation": "horizontal", "displayMode": "basic",
                          "valueMode": "color", "showUnfilled": True, "namePlacement": "auto",
                          "sizing": "auto", "minVizHeight": 16, "minVizWidth": 8})

    def dashboard(self, uid: str, title: str, description: str,
                  variables: list[dict[str, Any]], links: list[dict[str, Any]]
                  ) -> dict[str, Any]:
        for i, panel in enumerate(self.panels, 1):
            panel["id"] = i
        return {
            "uid": uid, "title": title, "description": description, "tags": ["llmmon"],
            "timezone": "browser", "schemaVersion": 39, "version": 1, "editable": True,
            "refresh": "30s", "time": {"from": "now-3h", "to": "now"},
            "graphTooltip": 1, "panels": self.panels, "templating": {"list": variables},
            "annotations": {"list": []}, "links": links,
        }


@dataclass(frozen=True)
class Column:
    name: str
    expr: str
    unit: str
    mappings: list[dict[str, Any]] | None = None
    thresholds: Thresholds | None = None
    cell: str = "color-text"  # how thresholds and mappings colour the cell
    # Not shown: a query there for its labels only (an info series' value is always 1).
    hidden: bool = False


def _legend() -> dict[str, Any]:
    return {"legend": {"showLegend": True, "displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "multi", "sort": "desc"}}


def dashed(ref: str, color: str) -> dict[str, Any]:
    """An override that draws one query as a dashed reference line (an objective)."""
    return {"matcher": {"id": "byFrameRefID", "options": ref}, "properties": [
        {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
        {"id": "color", "value": {"mode": "fixed", "fixedColor": color}},
        {"id": "custom.fillOpacity", "value": 0}]}


def variable(name: str, query: str, label: str, description: str) -> dict[str, Any]:
    return {"name": name, "label": label, "description": description, "type": "query",
            "datasource": DS, "query": {"query": query, "refId": name}, "definition": query,
            "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*", "sort": 1,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}}


DATASOURCE = {"name": "datasource", "label": "Data source", "type": "datasource",
              "query": "prometheus", "refresh": 1, "current": {},
              "description": "The Prometheus that scrapes llmmon."}
NAMESPACE = variable("namespace", "label_values(llmmon_build_info, namespace)", "Namespace",
                     "Kubernetes namespace of the llmmon targets (set by the Prometheus "
                     "Operator); empty outside Kubernetes, where All matches everything.")
JOB = variable("job", 'label_values(llmmon_build_info{namespace=~"$namespace"}, job)', "Job",
               "Scrape job of the llmmon targets (namespace/PodMonitor under the Operator).")
INSTANCE = variable("instance", 'label_values(llmmon_build_info{namespace=~"$namespace", '
                    'job=~"$job"}, instance)', "Instance", "One llmmon process (host:port).")
LLM_ENDPOINT = variable(
    "llm_endpoint", f"label_values(llmmon_endpoint_info{{{SEL}}}, llm_endpoint)", "Endpoint",
    "Endpoints configured in llmmon (the llm_endpoint label; the Operator's own `endpoint` "
    "label is the scrape port's name and is never used).")
MODEL_VAR = variable(
    "model", 'label_values({__name__=~"vllm:num_requests_running|sglang:num_running_reqs", '
    'namespace=~"$namespace"}, model_name)', "Model (server)",
    "The served model names that vLLM and SGLang label their own metrics with (model_name), in "
    "the selected namespaces; filters the model-server row. llama.cpp and TGI label no model: "
    "their series are selected by namespace only.")
MIN_STEP_OPTIONS = ["30s", "1m", "2m", "5m", "10m", "30m", "1h"]
MIN_STEP_VAR = {
    "name": "min_step", "label": "Min step (≥ 2 probe intervals)", "type": "custom",
    "description": "The minimum interval of the latency and count panels. Probe histograms get "
    "one observation per probe: a window shorter than two probe intervals shows gaps. 2m suits "
    "endpoints probed every minute or faster; set it to twice the longest probe interval.",
    "query": ",".join(MIN_STEP_OPTIONS), "includeAll": False, "multi": False, "hide": 0,
    "current": {"selected": True, "text": "2m", "value": "2m"},
    "options": [{"selected": v == "2m", "text": v, "value": v} for v in MIN_STEP_OPTIONS]}
GPU_VAR = variable("gpu", f"label_values(llmmon_gpu_up{{{SEL}}}, gpu)", "GPU",
                   "GPU index as NVML numbers them on each host.")


def link(to: str, title: str) -> dict[str, Any]:
    """A dashboard link carrying the time range and the shared variables along."""
    return {"title": title, "type": "link", "url": f"/d/{UID[to]}", "icon": "dashboard",
            "tooltip": f"Open the {title} dashboard with this time range and these variables",
            "keepTime": True, "includeVars": True, "targetBlank": False, "asDropdown": False,
            "tags": []}


def quantiles(metric: str, what: str = "") -> list[Target]:
    return [(f"histogram_quantile({q}, sum by (le, {BY}) (rate({metric}_bucket{{{EP}}}[{RI}])))",
             f"p{round(q * 100)} {what}{E}") for q in (0.5, 0.9, 0.99)]


WINDOW = ("Quantiles from the histogram's buckets over $__rate_interval, on a panel whose "
          "minimum step is $min_step (2m by default): every window holds two probes or more of "
          "an endpoint probed every minute, so the lines have no gaps; for endpoints probed less "
          "often raise min_step to twice their interval.")


def per_host(query: Callable[[str], str], by: str = "") -> str:
    """Host-wide values (CPU, load, memory, block devices) once per host. Every llmmon on a
    node reads the same /proc (a sidecar in each model Pod, or a DaemonSet's one): where the
    targets carry a `node` label (the PodMonitor's relabelling of the Pod's node name), one
    series per node; elsewhere one per instance (outside Kubernetes each llmmon is its host)."""
    on_node, off_node = query(SEL + ', node!=""'), query(SEL + ', node=""')
    return f"max by (node{by}) ({on_node}) or max by (instance{by}) ({off_node})"


def endpoints() -> dict[str, Any]:
    b = Board()
    b.row("Fleet")
    b.table("Endpoints", [
        Column("Status", f"min by ({IDENT}) (llmmon_probe_success{{{EP}}})", "none",
               mappings=STATUS_MAP, cell="color-background"),
        Column("Starting", f"max by ({IDENT}) (llmmon_probe_starting{{{EP}}})", "none",
               mappings=STARTING_MAP),
        Column("Failures in a row",
               f"max by ({IDENT}) (llmmon_probe_consecutive_failures{{{EP}}})", "none",
               thresholds=[(None, "green"), (1, "orange"), (3, "red")]),
        Column("Success ratio",
               f'sum by ({IDENT}) (increase(llmmon_probe_requests_total{{{EP}, '
               f'outcome="success"}}[$__range])) / sum by ({IDENT}) '
               f"(increase(llmmon_probe_requests_total{{{EP}}}[$__range]))", "percentunit",
               thresholds=[(None, "red"), (0.95, "orange"), (0.99, "green")]),
        Column("TTFT p90", f"histogram_quantile(0.9, sum by (le, {IDENT}) (increase("
               f"llmmon_probe_time_to_first_token_seconds_bucket{{{EP}}}[$__range])))", "s"),
        Column("Since last success", f"time() - max by ({IDENT}) "
               f"(llmmon_probe_last_success_timestamp_seconds{{{EP}}} > 0)", "s",
               thresholds=[(None, "green"), (300, "orange"), (900, "red")]),
        Column("Cost", f"sum by ({IDENT}) (increase(llmmon_probe_cost_usd_total{{{EP}}}"
               "[$__range]))", "currencyUSD"),
        Column("Probe interval", f"max by ({IDENT}) (llmmon_probe_interval_seconds{{{EP}}})",
               "s"),
    ], key={"namespace": "Namespace", "job": "Job", "llm_endpoint": "Endpoint",
            "provider": "Provider", "model": "Model"}, sort="Status", h=8,
        description="""One row per endpoint of each llmmon deployment. Status: the last probe
        (OK, or failing: no answer, a wrong one, or an error). Starting: the endpoint is in its
        start-up grace (no success yet since llmmon or the endpoint started, within
        startup_grace): its failures count as starting, not down. Failures in a row: probes
        the server did not answer, one after another (0 after any answer). Success ratio, TTFT
        p90 and Cost are over the dashboard's time range; Since last success is how long ago the
        last fully successful probe was (a value near the probe interval is normal; empty
        before the first success). Cost is empty for endpoints without pricing. Probe
        interval: how often the endpoint is probed; the latency panels want a min_step of
        twice the longest one.""")

    b.row("Health")
    b.stat("Last probe", [(f"llmmon_probe_success{{{EP}}}", E)], "none", mappings=STATUS_MAP,
           thresholds=[(None, "red"), (1, "green")], background=True,
           description="""The last probe of each endpoint: OK when it got an answer from the
           configured model that passed its check, failing otherwise (Errors by reason says
           why). One failing probe is not an outage: the alerts wait for several.""")
    b.stat("Start-up grace", [(f"llmmon_probe_starting{{{EP}}}", E)], "none",
           mappings=STARTING_MAP, description="""starting while the endpoint has not answered
           since llmmon (or the endpoint's config) started and startup_grace (10m by default)
           has not passed: a model server still loading its weights. Its failures then count as
           starting, not as down, and page nobody. no: normal operation.""")
    b.stat("HTTP status of the last probe", [(f"llmmon_probe_http_status_code{{{EP}}}", E)],
           "none", mappings=HTTP_MAP, background=True,
           thresholds=[(None, "red"), (200, "green"), (300, "orange"), (500, "red")],
           description="""The status code of the last probe's response: 2xx green; 3xx and 4xx
           orange (401/403 a rejected key, 404 a wrong URL or model, 429 rate limited); 5xx red;
           no response (connection refused, DNS, TLS, timeout before the headers) red.""")
    b.stat("Failures in a row", [(f"llmmon_probe_consecutive_failures{{{EP}}}", E)], "none",
           thresholds=[(None, "green"), (1, "orange"), (3, "red")],
           description="""Probes in a row the server did not answer (transport, HTTP, protocol
           or empty failures; start-up grace failures aside). Wrong answers do not count here:
           the server answered. 0 is normal.""")
    b.stat("Since the last success",
           [(f"time() - (llmmon_probe_last_success_timestamp_seconds{{{EP}}} > 0)", E)], "s",
           thresholds=[(None, "green"), (300, "orange"), (900, "red")],
           description="""Seconds since each endpoint's last fully successful probe. Normal:
           below its probe interval plus the probe's duration. Empty before the first
           success.""")
    b.stat("Success ratio over the range", [(
        f'sum by ({BY}) (increase(llmmon_probe_requests_total{{{EP}, outcome="success"}}'
        f"[$__range])) / sum by ({BY}) (increase(llmmon_probe_requests_total{{{EP}}}"
        "[$__range]))", E)], "percentunit",
        thresholds=[(None, "red"), (0.95, "orange"), (0.99, "green")],
        description="""Share of probes that fully succeeded over the dashboard's time range
        (an answer from the right model that passed its check). Compare with the availability
        objective in the SLO row.""")
    b.bars("Errors by reason", [(
        f"sum by ({BY}, reason) (increase(llmmon_probe_errors_total{{{EP}}}[{BAR}]))",
        "{{reason}} " + E)], "short", interval=MIN_STEP,
        description="""Failed probes per bar, by reason: timeout, connect, http_4xx,
        rate_limited, http_5xx, protocol, too_large, empty, wrong_model, check_failed. Each bar
        counts the failures of its own interval ($min_step or more), so the bars add up to the
        failures over the range. None is normal; /probes?endpoint=NAME on llmmon shows the
        server's own message for each failure.""")
    b.bars("Skipped probes", [(
        f"sum by ({BY}, reason) (increase(llmmon_probe_skipped_total{{{EP}}}[{BAR}]))",
        "{{reason}} " + E)], "short", interval=MIN_STEP,
        description="""Probes llmmon did not send, per bar: budget (the endpoint's daily cost
        or token budget is spent until UTC midnight) or retry_after (the server's Retry-After
        has not passed). None is normal.""")

    b.row("SLOs and error budgets")
    burn = ("{window} error ratio of each endpoint's SLO events divided by its error budget "
            "(1 - objective), from the recording rule llmmon:slo_error_ratio:{rule}. 1 spends "
            "the budget exactly over the SLO period; the page alerts need 14.4 over 1h (and 5m) "
            "or 6 over 6h (and 30m), the tickets 3 over 1d and 1 over 3d. Below 1 is normal. "
            "Needs llmmon's recording rules loaded in Prometheus.")
    for window, rule in (("1h", "rate1h"), ("6h", "rate6h")):
        b.series(f"Burn rate, {window} window", [(
            f"max by ({BY}, objective) (llmmon:slo_error_ratio:{rule}{{{EP}}} / on (namespace, "
            "job, instance, llm_endpoint, objective) group_left () ((1 - "
            f"llmmon_probe_slo_objective_ratio{{{EP}}}) > 0))", "{{objective}} " + E)],
            "suffix:×", w=8, thresholds=BURN, minimum=0,
            description=burn.format(window=f"The {window}", rule=rule))
    bad = f'increase(llmmon_probe_slo_events_total{{{EP}, result="bad"}}[$__range])'
    good = f'increase(llmmon_probe_slo_events_total{{{EP}, result="good"}}[$__range])'
    answered = f'increase(llmmon_probe_slo_events_total{{{EP}, result=~"good|bad"}}[$__range])'
    b.bargauge("Error budget remaining over the range", [(
        f"1 - (sum by ({BY}, objective) ({bad}) or sum by ({BY}, objective) ({good}) * 0) / "
        f"sum by ({BY}, objective) ({answered}) / on ({BY}, objective) group_left () "
        f"((1 - max by ({BY}, objective) (llmmon_probe_slo_objective_ratio{{{EP}}})) > 0)",
        "{{objective}} " + E)], "percentunit", maximum=1, minimum=0,
        thresholds=[(None, "red"), (0.25, "orange"), (0.5, "green")],
        description="""Share of each objective's error budget left over the dashboard's time
        range, counted from llmmon_probe_slo_events_total: 1 - (bad / (good + bad)) / (1 -
        objective). Set the time range to the SLO period (30 days is usual; older events are
        only counted as far as Prometheus keeps them) to read the budget of the period.
        Negative: the objective was missed over the range. Start-up grace events are not
        counted.""")
    b.bars("Availability events", [(
        f'sum by ({BY}, result) (increase(llmmon_probe_slo_events_total{{{EP}, '
        f'objective="availability"}}[{BAR}]))', "{{result}} " + E)], "short", interval=MIN_STEP,
        description="""Probes counted against the availability objective per bar: good (the
        server answered with content, even a wrong answer), bad (no answer: transport, HTTP,
        protocol or empty failures) and starting (failures during the start-up grace, which
        spend no budget). Mostly good is normal.""")
    b.table("Objectives", [
        Column("Target", f"max by ({BY}, objective) (llmmon_probe_slo_objective_ratio{{{EP}}})",
               "percentunit"),
        Column("Threshold", f"max by ({BY}, objective) "
               f"(llmmon_probe_slo_threshold_seconds{{{EP}}})", "s"),
    ], key={"namespace": "Namespace", "job": "Job", "llm_endpoint": "Endpoint",
            "objective": "Objective"}, sort="Endpoint", w=12,
        description="""Each endpoint's objectives as configured (slo: in llmmon's config):
        availability and accuracy targets, and for ttft and itl the latency threshold a probe
        (or a token gap) must meet and the share of them that must meet it.""")

    b.row("Latency (client side, on llmmon's probe schedule)")
    b.series("Time to first token", quantiles("llmmon_probe_time_to_first_token_seconds") + [
        (f'max by ({BY}) (llmmon_probe_slo_threshold_seconds{{{EP}, objective="ttft"}})',
         "objective " + E)], "s", interval=MIN_STEP, overrides=[dashed("D", "red")],
        description="From the request's last byte sent to the first content token received, "
        "successful probes only; the dashed line is the endpoint's TTFT objective. " + WINDOW)
    b.heatmap("Time to first token, distribution", "llmmon_probe_time_to_first_token_seconds",
              "s", description="Probes per second in each TTFT bucket (darker: more probes), "
              "summed over the selected endpoints: a second band shows a bimodal server (cold "
              "cache, queueing). Rates over $__rate_interval at a $min_step minimum step, so "
              "endpoints probed every minute fill every column.")
    b.series("Inter-token latency", quantiles("llmmon_probe_inter_token_latency_seconds") + [
        (f'max by ({BY}) (llmmon_probe_slo_threshold_seconds{{{EP}, objective="itl"}})',
         "objective " + E)], "s", interval=MIN_STEP, overrides=[dashed("D", "red")],
        description="Every gap between consecutive streamed content chunks (chunk gaps are "
        "token gaps unless Tokens per streamed chunk is above 1); the dashed line is the "
        "endpoint's ITL objective. " + WINDOW)
    b.heatmap("Inter-token latency, distribution", "llmmon_probe_inter_token_latency_seconds",
              "s", description="Token gaps per second in each ITL bucket, summed over the "
              "selected endpoints: a band far above the rest is stalls (preemption, a batch "
              "filling up, a proxy buffering). Rates over $__rate_interval at a $min_step "
              "minimum step.")
    b.series("Time per output token", quantiles("llmmon_probe_time_per_output_token_seconds"),
             "s", interval=MIN_STEP, description="Per probe, (e2e - ttft) / (output tokens - "
             "1), as vLLM defines TPOT: the decode speed a user sees. " + WINDOW)
    b.series("End-to-end latency", quantiles("llmmon_probe_e2e_latency_seconds"), "s",
             interval=MIN_STEP, description="From the start of the request to the end of the "
             "response, connection set-up included; grows with max_tokens. " + WINDOW)
    b.series("Reasoning models: first thinking and first answer token", [
        (f"histogram_quantile({q}, sum by (le, {BY}) (rate(llmmon_probe_time_to_first_"
         f"{kind}_token_seconds_bucket{{{EP}}}[{RI}])))", f"p{round(q * 100)} {kind} {E}")
        for kind in ("reasoning", "answer") for q in (0.5, 0.9)], "s", interval=MIN_STEP,
        description="Reasoning models only (empty for others): time to the first thinking "
        "token, and to the first token of the answer proper. The gap between the two is the "
        "thinking time a user waits through. " + WINDOW)
    b.series("HTTP phases of the last probe",
             [(f"llmmon_probe_http_phase_seconds{{{EP}}}", "{{phase}} " + E)], "s",
             description="""DNS, connect, TLS, send and wait (to the response headers) of the
             last probe. connect and TLS are 0 when a pooled connection was reused; a large
             wait with small TTFT means the server sends headers late.""")

    b.row("Throughput, load probe and rate limits")
    b.series("Output tokens per second (per request)",
             quantiles("llmmon_probe_output_tokens_per_second"), "short", interval=MIN_STEP,
             description="Decode speed of each probe: (output tokens - 1) / (e2e - ttft). "
             "Falls when the server's batch fills up. " + WINDOW)
    b.series("Tokens used by probes", [
        (f"sum by ({BY}) (rate(llmmon_probe_output_tokens_total{{{EP}}}[{RI}]))",
         "output " + E),
        (f"sum by ({BY}) (rate(llmmon_probe_prompt_tokens_total{{{EP}}}[{RI}]))",
         "prompt " + E),
    ], "short", description="""Tokens per second spent by llmmon's own probes (from the
    server's usage when reported, else counted): what monitoring costs the server.""")
    b.series("Tokens per streamed chunk", [
        (f"sum by ({BY}) (rate(llmmon_probe_tokens_per_chunk_sum{{{EP}}}[{RI}])) / "
         f"sum by ({BY}) (rate(llmmon_probe_tokens_per_chunk_count{{{EP}}}[{RI}]) > 0)", E),
        (f"llmmon_probe_chunks_coalesced{{{EP}}}", "coalesced now " + E),
    ], "short", thresholds=[(None, "green"), (1.5, "orange")], interval=MIN_STEP,
        description="""Output tokens per streamed content chunk. 1 is normal; above 1 a server
        or proxy coalesces tokens, so chunk gaps are not token gaps and ITL reads low
        ("coalesced now" is 1 while the last probe was).""")
    b.series("Load probe throughput", [
        (f"llmmon_load_requests_per_second{{{EP}}}", "requests/s " + E),
        (f"llmmon_load_output_tokens_per_second{{{EP}}}", "tokens/s " + E),
    ], "short", description="""The last scheduled load probe (a burst of concurrent requests,
    endpoints with load: only): successful requests and output tokens per second of its wall
    time. A drop at the same concurrency is a capacity regression.""")
    b.series("Load probe TTFT", [
        (f"llmmon_load_time_to_first_token_seconds{{{EP}}}", "{{percentile}} " + E)], "s",
        w=8, description="""TTFT percentiles across the requests of the last load probe:
        latency under concurrency, against the single-probe TTFT above.""")
    b.series("Load probe error ratio", [
        (f"llmmon_load_error_ratio{{{EP}}}", E)], "percentunit", w=8, maximum=1,
        thresholds=[(None, "green"), (0.05, "red")],
        description="""Share of the last load probe's requests that failed. 0 is normal; the
        reasons are in Load probe errors.""")
    b.bars("Load probe errors", [(
        f"sum by ({BY}, reason) (increase(llmmon_load_errors_total{{{EP}}}[{BAR}]))",
        "{{reason}} " + E)], "short", w=8, interval=MIN_STEP,
        description="""Failed requests of load probes per bar, by reason (rate_limited under
        concurrency means the burst hit the server's limits). None is normal.""")
    b.series("Rate limit remaining", [
        (f"llmmon_probe_ratelimit_remaining{{{EP}}}", "remaining {{kind}} " + E),
        (f"llmmon_probe_ratelimit_limit{{{EP}}}", "limit {{kind}} " + E)], "short",
        description="""Requests or tokens left in the current rate-limit window, and the
        window's limit, as the server reported them on the last probe (x-ratelimit-* and
        anthropic-ratelimit-* headers). Empty for servers that send none.""")
    b.series("Rate-limit headroom", [(
        f"llmmon_probe_ratelimit_remaining{{{EP}}} / (llmmon_probe_ratelimit_limit{{{EP}}} > 0)",
        "{{kind}} " + E)], "percentunit", maximum=1,
        thresholds=[(None, "red"), (0.1, "orange"), (0.25, "green")],
        description="""Remaining / limit for each kind of rate limit: the share of the window's
        quota still available when the last probe ran. Near 0 the next requests (users' too)
        get 429s.""")

    b.row("Correctness and cost")
    b.series("Answer accuracy by prompt", [(
        f'sum by ({BY}, prompt) (increase(llmmon_probe_checks_total{{{EP}, result="pass"}}'
        f"[1h])) / sum by ({BY}, prompt) (increase(llmmon_probe_checks_total{{{EP}}}[1h]))",
        "{{prompt}} " + E)], "percentunit", maximum=1,
        thresholds=[(None, "red"), (0.95, "green")],
        description="""Share of each prompt's answer checks passed over a rolling hour (a
        ratio of two increases over the same window, so the window's length does not skew it).
        1 is normal; one prompt far below the others is a model or template change that
        breaks that kind of question.""")
    b.series("Probe cost rate", [(
        f"sum by ({BY}) (rate(llmmon_probe_cost_usd_total{{{EP}}}[{RI}])) * 3600", E)],
        "currencyUSD", w=6, description="""What the probes cost, in US dollars per hour, from
        the configured prices per million tokens (cached prompt tokens at their own price).
        Empty for endpoints without pricing.""")
    b.series("Daily budget spent", [
        (f"llmmon_probe_budget_spent_usd{{{EP}}} / (llmmon_probe_budget_daily_usd{{{EP}}} > 0)",
         "USD " + E),
        (f"llmmon_probe_budget_spent_tokens{{{EP}}} / "
         f"(llmmon_probe_budget_daily_tokens{{{EP}}} > 0)", "tokens " + E),
    ], "percentunit", w=6, thresholds=[(None, "green"), (0.8, "orange"), (1, "red")],
        description="""Share of each endpoint's daily budget spent today (the UTC day: it
        resets at midnight UTC, as the budget does). At 100% llmmon stops probing the endpoint
        until midnight (Skipped probes: budget). Only endpoints with a budget.""")

    quality(b)
    model(b)
    cache_and_network(b)
    model_server(b)
    self_health(b)
    return b.dashboard(UID["endpoints"], "LLM endpoints",
                       "What llmmon's synthetic probes measure, per endpoint, and what the "
                       "model servers behind them report.",
                       [DATASOURCE, NAMESPACE, JOB, INSTANCE, LLM_ENDPOINT, MODEL_VAR,
                        MIN_STEP_VAR],
                       [link("resources", "LLM resources")])


# The thresholds of the evaluation alerts (deploy/prometheus/llmmon-rules.yml), drawn as
# dashed lines under or over each suite's score.
EVAL_DROP = 0.15  # LLMEvalScoreDropped: this far under the 7-day median
PERPLEXITY_RISE = 1.25  # LLMEvalPerplexityRose: this many times the 7-day median
SUITE = "{{suite}} {{scorer}} " + E


def quality(b: Board) -> None:
    """Evaluation suites: scored questions run on their own slow schedule (hourly by
    default), beside the probes' pass/fail checks."""
    b.row("Quality (evaluation suites)")
    score = f'llmmon_eval_score{{{EP}, scorer!="perplexity"}}'
    b.series("Eval score by suite and scorer", [
        (score, SUITE),
        (f"quantile_over_time(0.5, {score}[7d]) - {EVAL_DROP}", "alert under: " + SUITE)],
        "none", minimum=0, maximum=1, interval="5m", overrides=[dashed("B", "red")],
        description=f"""Mean score of each suite's last run, per scorer, from 0 (every item
        wrong) to 1 (every item right); graded scorers (f1, rouge_l, bleu) give partial
        credit. A step is a run (hourly by default). The dashed line is the
        LLMEvalScoreDropped threshold, {EVAL_DROP} under the series' median over 7 days: a
        score under it for two hourly runs warns (once the suite has run 24 times). A suite
        whose runs sample different items moves from run to run; a fall that lasts is a model,
        quantisation, template or system-prompt change.""")
    perplexity = f'llmmon_eval_score{{{EP}, scorer="perplexity"}}'
    b.series("Perplexity by suite", [
        (perplexity, SUITE),
        (f"{PERPLEXITY_RISE} * quantile_over_time(0.5, {perplexity}[7d])",
         "alert over: " + SUITE)],
        "none", minimum=1, interval="5m", overrides=[dashed("B", "red")],
        description=f"""Perplexity of each suite's reference texts (the perplexity scorer),
        over every token of the run's texts: how unlikely the model finds them; lower is
        better, and only comparable for one suite on one model family. The dashed line is the
        LLMEvalPerplexityRose threshold, {PERPLEXITY_RISE} times the series' 7-day median. Needs
        a server that returns the logprobs of the prompt (OpenAI completions with echo and
        logprobs, as vLLM and llama.cpp do): empty without perplexity items.""")
    b.bargauge("Items of the last run", [(
        f"llmmon_eval_last_run_items{{{EP}}}", "{{result}} · {{suite}} · " + E)], "short", w=6,
        minimum=0, overrides=[
            {"matcher": {"id": "byRegexp", "options": f"^{result} "}, "properties": [
                {"id": "color", "value": {"mode": "fixed", "fixedColor": color}}]}
            for result, color in (("pass", "green"), ("fail", "red"), ("error", "orange"))],
        description="""Items of each suite's last run by result: pass, fail (answered, scored
        under the suite's pass_score) and error (the request failed: nothing to score, and
        not in the score). Errors point at the endpoint (Errors by reason), fails at the
        model.""")
    passed = f'increase(llmmon_eval_items_total{{{EP}, result="pass"}}[$__range])'
    scored = f'increase(llmmon_eval_items_total{{{EP}, result=~"pass|fail"}}[$__range])'
    b.bargauge("Items passed over the range", [(
        f"sum by ({BY}, suite) ({passed}) / (sum by ({BY}, suite) ({scored}) > 0)",
        "{{suite}} " + E)], "percentunit", w=6, minimum=0, maximum=1,
        thresholds=[(None, "red"), (0.5, "orange"), (0.8, "green")],
        description="""Share of each suite's scored items (pass or fail; errors left out, as
        the score leaves them out) that passed, over all runs in the dashboard's time range.
        Steadier than one run's score when runs sample different items.""")
    b.bars("Eval runs by outcome", [(
        f"sum by ({BY}, suite, outcome) (increase(llmmon_eval_runs_total{{{EP}}}[{BAR}]))",
        "{{outcome}} {{suite}} " + E)], "short", interval="1h",
        description="""Suite runs per hour-long bar, by outcome: complete; partial (the
        suite's timeout or tokens_per_run cut it short: its score covers fewer items); skipped
        (the endpoint's daily budget is spent). One complete run an hour is normal for the
        default schedule (`every: 1h`).""")
    b.stat("Since the last eval run", [(
        f"time() - llmmon_eval_last_run_timestamp_seconds{{{EP}}}", "{{suite}} " + E)], "s",
        w=12, h=8, description="""Seconds since each suite's last run on each endpoint finished
        (skipped runs do not count). Normal: under the suite's `every` plus a run's duration;
        far over it, runs are being skipped (Eval runs by outcome) or llmmon restarted.""")
    b.series("Eval run duration", [(
        f"llmmon_eval_duration_seconds{{{EP}}}", "{{suite}} " + E)], "s",
        description="""Wall time of each suite's last run (its items one after another, or
        `concurrency` at a time). Grows with the endpoint's latency; at the suite's timeout
        the run ends partial.""")


def model(b: Board) -> None:
    """What each server says it serves, and speed against size across the endpoints."""
    b.row("Model")
    b.table("Models", [
        Column("Parameters", f"max by ({IDENT}) (llmmon_model_parameters{{{EP}}})", "short"),
        Column("Weights", f"max by ({IDENT}) (llmmon_model_size_bytes{{{EP}}})", "bytes"),
        Column("In GPU memory", f"max by ({IDENT}) (llmmon_model_vram_bytes{{{EP}}})",
               "bytes"),
        Column("Context", f"max by ({IDENT}) (llmmon_model_context_length_tokens{{{EP}}})",
               "short"),
        Column("Since the server answered", f"time() - max by ({IDENT}) "
               f"(llmmon_model_info_timestamp_seconds{{{EP}}})", "s"),
        Column("Info", f"max by ({IDENT}, quantization, source) (llmmon_model_info{{{EP}}})",
               "none", hidden=True),
    ], key={"namespace": "Namespace", "job": "Job", "llm_endpoint": "Endpoint",
            "provider": "Provider", "model": "Model", "quantization": "Quantisation",
            "source": "Figures from"}, sort="Endpoint", w=14,
        description="""What each endpoint's server says about its model (asked every
        `model_info`, 1h by default): parameters, size of the weights, the part in GPU memory
        (Ollama's /api/ps only), context length and quantisation. Figures from: server (its
        model listing: llama.cpp's /v1/models meta, vLLM's max_model_len, Ollama, TGI /info),
        name (parameters and quantisation guessed from the model's name, e.g. 8B, Q4_K_M) or
        none. Empty cells: the server does not say. Since the server answered: age of the
        last answer from the server itself.""")
    b.xychart("Decode speed against model size", Column(
        "Parameters", f"max by ({BY}) (llmmon_model_parameters{{{EP}}})", "short"), [
        Column("Output tokens/s per request (p50)", f"histogram_quantile(0.5, sum by (le, {BY}) "
               f"(increase(llmmon_probe_output_tokens_per_second_bucket{{{EP}}}[$__range])))",
               "short"),
        Column("Load probe output tokens/s", f"max by ({BY}) "
               f"(llmmon_load_output_tokens_per_second{{{EP}}})", "short"),
    ], w=10, description="""One point per endpoint: its model's parameters (x) against the
        median decode speed of its probes over the dashboard's time range, and the last load
        probe's output tokens per second (y). Bigger models decode slower on the same
        hardware; a point far below others of its size is a slower GPU, a busier server or a
        heavier quantisation. Endpoints without a known parameter count have no point.""")


def cache_and_network(b: Board) -> None:
    """The prefix cache's effect on TTFT, and where TTFT goes: network, server, the rest."""
    b.row("Cache and network")
    b.series("Prefix cache: cold and warm TTFT", [
        (f"llmmon_cache_probe_ttft_seconds{{{EP}}}", "{{cache}} " + E)], "s", w=8,
        description="""TTFT of the last cache probe's two requests (endpoints with
        cache_probe: only): cold, a long prefix the server cannot have cached (a fresh nonce
        starts it), then warm, the same prefix again. Warm well under cold: the prefix cache
        works; equal: the server has none, or it is off (vLLM --enable-prefix-caching,
        SGLang's radix cache).""")
    b.series("Prefix cache: warm over cold TTFT", [
        (f"llmmon_cache_probe_ttft_ratio{{{EP}}}", E)], "percentunit", w=8,
        thresholds=[(None, "green"), (0.8, "orange")],
        description="""Warm TTFT over cold TTFT of the last cache probe. Well under 100%
        (often under 50% for a long prefix) when the prefix cache works; near 100% it
        saves nothing: no cache, a cache too small or evicted under load, or a gateway
        spreading the pair over replicas.""")
    b.series("Cached prompt tokens (cache probe)", [
        (f"llmmon_cache_probe_cached_tokens{{{EP}}}", "{{cache}} " + E)], "short", w=8,
        description="""Prompt tokens the server said it read from its cache in the last
        cache probe's requests (OpenAI usage cached_tokens, llama.cpp cache_n), when it says:
        near 0 for cold, near the prefix's length for warm when the cache works.""")
    b.series("Cached share of probe prompt tokens", [(
        f"sum by ({BY}) (rate(llmmon_probe_cached_prompt_tokens_total{{{EP}}}[{RI}])) / "
        f"(sum by ({BY}) (rate(llmmon_probe_prompt_tokens_total{{{EP}}}[{RI}])) > 0)", E)],
        "percentunit", w=6, maximum=1,
        description="""Share of the regular probes' prompt tokens the server reports it read
        from its cache. Probes start with a nonce (cache_bust, on by default), so near 0 is
        normal: only a long shared system prompt is cached. High with cache_bust off: the
        probes' TTFT is then a warm-cache one.""")
    b.bars("Cache probe errors", [(
        f"sum by ({BY}, reason) (increase(llmmon_cache_probe_errors_total{{{EP}}}[{BAR}]))",
        "{{reason}} " + E)], "short", w=6, interval=MIN_STEP,
        description="""Cache probes that failed per bar, by the failed request's reason
        (the probes' own reasons: timeout, http_4xx, ...). None is normal; http_4xx on the
        cold request alone is often a prefix longer than the model's context
        (prefix_words).""")
    b.series("Network round trip (TCP)", [
        (f"llmmon_probe_network_rtt_seconds{{{EP}}}", E)], "s", w=6,
        description="""The kernel's smoothed round-trip time of the last probe's TCP
        connection (TCP_INFO), to the server or the first proxy in front of it: what the
        network adds to each request, measured without extra traffic. Sub-millisecond on a
        node or in a cluster; tens of ms across regions.""")
    b.series("Server-reported time by phase", [
        (f"llmmon_probe_server_time_seconds{{{EP}}}", "{{phase}} " + E)], "s", w=6,
        description="""The server's own timing of the last probe where it sends one: queue,
        prefill, decode, load, total, and upstream (a proxy's wait for its upstream, Envoy's
        x-envoy-upstream-service-time). From llama.cpp's timings, Ollama's durations, TGI's
        x-*-time headers, openai-processing-ms. Empty for servers that send none (vLLM).""")
    b.series("TTFT split: network, server, rest", [
        (f"llmmon_probe_ttft_share_seconds{{{EP}}}", "{{share}} ({{job}})")], "s", w=24,
        stacked=True, repeat="llm_endpoint",
        description="""The last successful probe's TTFT cut in three, stacked to the TTFT
        itself, one panel per endpoint: network (one TCP round trip), server (the queue and
        prefill time it reports) and rest (decoding the first token, transport, gateways,
        what the server does not report). A large rest with a small server share is time
        spent in front of the engine; no server share: the server reports no timing.""")


def model_server(b: Board) -> None:
    """The engines' own view, beside the client's: queue, batch, KV cache, prefix cache."""
    b.row("Model server (vLLM, llama.cpp, TGI, SGLang: their own /metrics)")
    servers = ("Needs the model server's own /metrics scraped by the same Prometheus (vLLM and "
               "SGLang by default, llama.cpp with --metrics, TGI by default); series are "
               "selected by namespace and, for vLLM and SGLang, by $model (llama.cpp and TGI "
               "label no model). Empty for servers that export none.")
    b.series("Queue depth", [
        (f"sum by ({SRV_BY}) (vllm:num_requests_waiting{{{SRV_MODEL}}})",
         "vLLM {{model_name}} {{pod}}"),
        (f"sum by ({SRV_BY}) (sglang:num_queue_reqs{{{SRV_MODEL}}})",
         "SGLang {{model_name}} {{pod}}"),
        (f"sum by (namespace, pod, instance) (llamacpp:requests_deferred{{{SRV}}})",
         "llama.cpp {{pod}}{{instance}}"),
        (f"sum by (namespace, pod, instance) (tgi_queue_size{{{SRV}}})",
         "TGI {{pod}}{{instance}}"),
    ], "short", w=8, description="Requests waiting for a place in the running batch, per "
        "server: vllm:num_requests_waiting, sglang:num_queue_reqs, "
        "llamacpp:requests_deferred, tgi_queue_size. 0 is normal; a queue that stays up means "
        "the server is at capacity and TTFT grows with it. " + servers)
    b.series("Running batch", [
        (f"sum by ({SRV_BY}) (vllm:num_requests_running{{{SRV_MODEL}}})",
         "vLLM {{model_name}} {{pod}}"),
        (f"sum by ({SRV_BY}) (sglang:num_running_reqs{{{SRV_MODEL}}})",
         "SGLang {{model_name}} {{pod}}"),
        (f"sum by (namespace, pod, instance) (llamacpp:requests_processing{{{SRV}}})",
         "llama.cpp {{pod}}{{instance}}"),
        (f"sum by (namespace, pod, instance) (tgi_batch_current_size{{{SRV}}})",
         "TGI {{pod}}{{instance}}"),
    ], "short", w=8, description="Requests being decoded together, per server: "
        "vllm:num_requests_running, sglang:num_running_reqs, llamacpp:requests_processing "
        "(at most its --parallel slots), tgi_batch_current_size. " + servers)
    b.series("KV-cache use", [
        (f"max by ({SRV_BY}) (vllm:kv_cache_usage_perc{{{SRV_MODEL}}} or "
         f"vllm:gpu_cache_usage_perc{{{SRV_MODEL}}})", "vLLM {{model_name}} {{pod}}"),
        (f"max by ({SRV_BY}) (sglang:token_usage{{{SRV_MODEL}}})", "SGLang {{model_name}} {{pod}}"),
        (f"max by (namespace, pod, instance) (llamacpp:kv_cache_usage_ratio{{{SRV}}})",
         "llama.cpp {{pod}}{{instance}}"),
    ], "percentunit", w=8, maximum=1, thresholds=[(None, "green"), (0.9, "orange")],
        description="Share of the KV cache in use: vllm:kv_cache_usage_perc "
        "(vllm:gpu_cache_usage_perc before vLLM 0.10), sglang:token_usage, and "
        "llamacpp:kv_cache_usage_ratio (older llama.cpp builds only; current ones dropped it). "
        "Near 100% new requests queue and running ones get preempted. TGI exports none. "
        + servers)
    b.series("Prefix-cache hit rate", [
        (f"sum by ({SRV_BY}) (rate(vllm:prefix_cache_hits_total{{{SRV_MODEL}}}[{RI}])) / "
         f"(sum by ({SRV_BY}) (rate(vllm:prefix_cache_queries_total{{{SRV_MODEL}}}[{RI}])) > 0)",
         "vLLM {{model_name}} {{pod}}"),
        (f"max by ({SRV_BY}) (sglang:cache_hit_rate{{{SRV_MODEL}}})",
         "SGLang {{model_name}} {{pod}}"),
    ], "percentunit", w=8, maximum=1, description="Share of prompt tokens served from the "
        "prefix cache: vLLM's prefix_cache_hits_total / prefix_cache_queries_total (V1 "
        "engine, counted in tokens) and SGLang's cache_hit_rate. High with shared system "
        "prompts; a drop raises TTFT. llama.cpp and TGI export none. " + servers)
    b.bars("Preemptions", [
        (f"sum by ({SRV_BY}) (increase(vllm:num_preemptions_total{{{SRV_MODEL}}}[{BAR}]))",
         "vLLM {{model_name}} {{pod}}"),
        (f"sum by ({SRV_BY}) (increase(sglang:num_retracted_requests_total{{{SRV_MODEL}}}"
         f"[{BAR}]))", "SGLang {{model_name}} {{pod}}"),
    ], "short", w=8, interval="1m", description="Running requests evicted from the batch per "
        "bar because the KV cache was full (vLLM preemptions, SGLang retractions): they are "
        "recomputed later, which shows as ITL stalls. None is normal. " + servers)
    b.series("TTFT p90: llmmon (client) against the server", [
        (f"histogram_quantile(0.9, sum by (le, {BY}) (rate("
         f"llmmon_probe_time_to_first_token_seconds_bucket{{{EP}}}[{RI}])))", "client " + E),
        (f"histogram_quantile(0.9, sum by (le, namespace, model_name) (rate("
         f"vllm:time_to_first_token_seconds_bucket{{{SRV_MODEL}}}[{RI}])))",
         "vLLM {{model_name}} ({{namespace}})"),
        (f"histogram_quantile(0.9, sum by (le, namespace, model_name) (rate("
         f"sglang:time_to_first_token_seconds_bucket{{{SRV_MODEL}}}[{RI}])))",
         "SGLang {{model_name}} ({{namespace}})"),
    ], "s", w=8, interval=MIN_STEP, description="llmmon's TTFT beside the one the server "
        "measures for all its requests (same buckets as vLLM's). The gap is what the server "
        "cannot see: queueing in front of the engine, the network, gateways and proxies. Only "
        "the servers of the selected namespaces and $model are drawn, one line per model. "
        + WINDOW + " " + servers)


def self_health(b: Board) -> None:
    b.row("llmmon itself")
    mine = f"and on (namespace, job, instance) llmmon_build_info{{{SEL}}}"
    b.series("Sampler success", [(f"llmmon_sampler_success{{{SEL}}}",
                                  "{{sampler}} {{instance}}")], "none", w=6, minimum=0,
             maximum=1, mappings=[value_map({"1": ("OK", "green"), "0": ("failed", "red")})],
             description="""1 while each sampler's last run succeeded (host, container, gpu,
             process). No data is not a failure (no GPU, no target process).""")
    b.series("Sampler duration", [(f"llmmon_sampler_duration_seconds{{{SEL}}}",
                                   "{{sampler}} {{instance}}")], "s", w=6,
             description="""Wall time of each sampler's last run. Normal: milliseconds; NVML
             calls on a troubled GPU can take seconds.""")
    b.bars("Skipped runs and job errors", [
        (f"sum by (namespace, job, task) (increase(llmmon_scheduler_missed_runs_total{{{SEL}}}"
         f"[{BAR}]))", "missed {{task}} ({{job}})"),
        (f"sum by (namespace, job, task) (increase(llmmon_scheduler_job_errors_total{{{SEL}}}"
         f"[{BAR}]))", "errors {{task}} ({{job}})"),
    ], "short", w=6, interval="1m", description="""Per bar: scheduled runs skipped because the
    previous run was still going or started too late (missed), and job runs that raised or hit
    their hard deadline (errors: a bug or a hang in llmmon, never an endpoint error). None is
    normal.""")
    b.stat("Config reload", [(f"llmmon_config_last_reload_successful{{{SEL}}}",
                              "{{instance}}")], "none", w=6, mappings=RELOAD_MAP,
           thresholds=[(None, "red"), (1, "green")], background=True,
           description="""Whether llmmon's last configuration load succeeded. rejected: the
           new file was invalid and llmmon keeps running the previous one (its log says
           why).""")
    b.series("llmmon memory", [
        (f"process_resident_memory_bytes{{{SEL}}} {mine}", "RSS {{instance}}")], "bytes", w=8,
        description="""Resident memory of each llmmon process (tens of MB is normal; steady
        growth is a leak).""")
    b.series("llmmon CPU", [
        (f"rate(process_cpu_seconds_total{{{SEL}}}[{RI}]) {mine}", "{{instance}}")],
        "percentunit", w=8, description="""CPU seconds per second used by each llmmon process
        (100% = one core). A few percent is normal.""")
    b.series("Tasks and threads", [
        (f"llmmon_asyncio_tasks{{{SEL}}}", "asyncio tasks {{instance}}"),
        (f"llmmon_threads{{{SEL}}}", "threads {{instance}}")], "short", w=8,
        description="""asyncio tasks and Python threads alive in each llmmon process: flat
        is normal, steady growth is a leak.""")


def resources() -> dict[str, Any]:
    b = Board()
    b.row("Host and container")
    host = """ Host-wide, drawn once per host: every llmmon on a node reads the same /proc
    (each sidecar re-reports its node), so the series are folded with max by node where the
    targets carry a node label (the PodMonitor's relabelling of the Pod's node), else by
    instance (outside Kubernetes an instance is its host)."""
    b.series("CPU busy", [(per_host(
        lambda s: f"llmmon_host_cpu_utilization_ratio{{{s}}}"), HOST)], "percentunit", w=8,
        maximum=1, thresholds=[(None, "green"), (0.9, "red")],
        description="Share of all the host's CPUs busy (0 to 1)." + host)
    b.series("CPU by mode", [(
        "sum by (mode) (" + per_host(lambda s: f"rate(llmmon_host_cpu_seconds_total{{{s}, "
                                     f'mode!="idle"}}[{RI}])', ", mode") + ")", "{{mode}}")],
        "short", w=8,
        description="CPU seconds per second (cores) in each mode but idle, summed over the "
        "selected hosts, each host counted once (not once per llmmon Pod on it): iowait is "
        "disk waits, steal a noisy VM neighbour." + host)
    b.series("Load average", [
        (per_host(lambda s: f"llmmon_host_load1{{{s}}}"), "1m " + HOST),
        (per_host(lambda s: f"llmmon_host_load5{{{s}}}"), "5m " + HOST),
        (per_host(lambda s: f"llmmon_host_load15{{{s}}}"), "15m " + HOST)], "short", w=8,
        description="Runnable (and uninterruptible) tasks, averaged; above the host's CPU "
        "count work is waiting for a CPU." + host)
    b.series("Memory", [
        (per_host(lambda s: f"llmmon_host_memory_used_bytes{{{s}}}"), "used " + HOST),
        (per_host(lambda s: f"llmmon_host_memory_available_bytes{{{s}}}"), "available " + HOST),
        (per_host(lambda s: f"llmmon_host_memory_total_bytes{{{s}}}"), "total " + HOST),
        (per_host(lambda s: f"llmmon_host_swap_used_bytes{{{s}}}"), "swap used " + HOST)],
        "bytes", w=8, description="The host's memory: used (total - available), available to "
        "new work without swapping, total, and swap in use (any swap slows a model server "
        "badly)." + host)
    b.series("Container CPU against its limit", [
        (f"rate(llmmon_container_cpu_usage_seconds_total{{{SEL}}}[{RI}])", "used {{instance}}"),
        (f"llmmon_container_cpu_limit_cores{{{SEL}}}", "limit {{instance}}")], "short", w=8,
        description="""Cores used by llmmon's container (its cgroup), against its CPU quota.
        No limit line when the cgroup has no quota. Near the limit the container is
        throttled.""")
    b.series("Container CPU throttling", [(
        f"rate(llmmon_container_cpu_throttled_periods_total{{{SEL}}}[{RI}]) / "
        f"(rate(llmmon_container_cpu_periods_total{{{SEL}}}[{RI}]) > 0) or "
        f"rate(llmmon_container_cpu_throttled_periods_total{{{SEL}}}[{RI}]) * 0",
        "{{instance}}")], "percentunit", w=8, maximum=1,
        thresholds=[(None, "green"), (0.25, "red")],
        description="""Share of the container's CFS periods in which it was throttled. Without
        a CPU quota there are no enforcement periods and nothing can be throttled: drawn as 0
        (the division is guarded, never 0/0). Above 25% probes and samples run late.""")
    b.series("Container memory against its limit", [
        (f"llmmon_container_memory_usage_bytes{{{SEL}}}", "used {{instance}}"),
        (f"llmmon_container_memory_limit_bytes{{{SEL}}}", "limit {{instance}}")], "bytes", w=8,
        description="""Memory charged to llmmon's container (page cache included) against its
        limit; no limit line without one. At the limit the kernel reclaims, then OOM-kills.""")
    b.bars("OOM kills", [
        (f"sum by (namespace, job, instance) (increase(llmmon_container_memory_oom_kills_total"
         f"{{{SEL}}}[{BAR}]))", "{{instance}}")], "short", w=8, interval="1m",
        thresholds=[(None, "green"), (1, "red")],
        description="""Processes of the container killed by the OOM killer, per bar. None is
        normal.""")
    b.series("Disk space used", [(
        f"1 - llmmon_host_disk_avail_bytes{{{SEL}}} / llmmon_host_disk_total_bytes{{{SEL}}}",
        "{{mountpoint}} {{instance}}")], "percentunit", w=8, maximum=1,
        thresholds=[(None, "green"), (0.9, "red")],
        description="""Share of each filesystem llmmon sees in use (from the space available
        to unprivileged users). Drawn per instance: in a Pod these are the container's own
        mounts. Model caches fill disks: alert before 100%.""")
    b.series("Disk I/O", [
        (per_host(lambda s: f"rate(llmmon_host_disk_read_bytes_total{{{s}}}[{RI}])",
                  ", device"), "read {{device}} " + HOST),
        (per_host(lambda s: f"rate(llmmon_host_disk_written_bytes_total{{{s}}}[{RI}])",
                  ", device"), "write {{device}} " + HOST)], "Bps", w=8,
        description="Bytes per second read and written, per block device (loading model "
        "weights shows as a read burst)." + host)
    b.series("Network", [
        (f"rate(llmmon_host_network_receive_bytes_total{{{SEL}}}[{RI}])",
         "rx {{interface}} {{instance}}"),
        (f"rate(llmmon_host_network_transmit_bytes_total{{{SEL}}}[{RI}])",
         "tx {{interface}} {{instance}}")], "Bps", w=8,
        description="""Bytes per second per network interface, per instance: in a Pod,
        the Pod's own network namespace (its eth0), not the node's, unless hostNetwork.""")
    b.series("Network errors and drops", [
        (f"rate(llmmon_host_network_receive_errors_total{{{SEL}}}[{RI}]) + "
         f"rate(llmmon_host_network_transmit_errors_total{{{SEL}}}[{RI}])",
         "errors {{interface}} {{instance}}"),
        (f"rate(llmmon_host_network_receive_drops_total{{{SEL}}}[{RI}]) + "
         f"rate(llmmon_host_network_transmit_drops_total{{{SEL}}}[{RI}])",
         "drops {{interface}} {{instance}}")], "pps", w=8,
        description="""Packets per second received or sent with errors, and dropped, per
        interface. 0 is normal; drops under load point at a full queue.""")

    b.row("GPUs")
    gpm = 'gpu_instance=""'
    b.stat("GPUs up", [(f"llmmon_gpu_up{{{GPU}}}", "GPU {{gpu}} {{instance}}")], "none", w=6,
           mappings=UP_MAP, thresholds=[(None, "red"), (1, "green")], background=True,
           description="""1 while NVML answers for the GPU; 0: the GPU fell off the bus or
           needs a reset (see Critical XID events).""")
    b.series("Saturation: SM activity (kernel time where no GPM)", [
        (f"llmmon_gpu_sm_active_ratio{{{GPU}, {gpm}}}", "SM activity {{gpu}} {{instance}}"),
        (f"llmmon_gpu_utilization_ratio{{{GPU}}} unless on (namespace, job, instance, gpu, "
         f"uuid) llmmon_gpu_sm_active_ratio{{{GPU}, {gpm}}}",
         "kernel time {{gpu}} {{instance}} (no GPM)")],
        "percentunit", w=9, maximum=1, thresholds=[(None, "green"), (0.9, "red")],
        description="What GPUSaturated alerts on. SM activity (GPM, Hopper and later) is the "
        "share of SMs busy; where a GPU has no GPM, NVML's utilisation (the share of time any "
        "kernel ran, 100% for one small kernel) is drawn instead and labelled so.")
    b.series("Memory used", [(
        f"llmmon_gpu_memory_used_bytes{{{GPU}}} / llmmon_gpu_memory_total_bytes{{{GPU}}}",
        "GPU {{gpu}} {{instance}}")], "percentunit", w=9, maximum=1,
        thresholds=[(None, "green"), (0.97, "red")],
        description="""Share of each GPU's memory in use. vLLM reserves most of it up front
        (gpu_memory_utilization, 0.9 by default), so a flat high line is normal for it.""")
    b.series("Temperature", [(f"llmmon_gpu_temperature_celsius{{{GPU}}}",
                              "GPU {{gpu}} {{instance}}")], "celsius", w=8,
             thresholds=[(None, "green"), (80, "orange"), (85, "red")],
             description="""GPU core temperature. Data-centre GPUs slow their clocks in the
             mid-80s °C (Clock throttle reasons: thermal).""")
    b.series("Power against limit", [
        (f"llmmon_gpu_power_watts{{{GPU}}}", "draw {{gpu}} {{instance}}"),
        (f"llmmon_gpu_power_limit_watts{{{GPU}}}", "limit {{gpu}} {{instance}}")], "watt", w=8,
        description="""Power draw (a sample) against the enforced power limit. Draw at the
        limit under load caps the clocks (power throttling).""")
    b.series("Energy (average power)", [
        (f"rate(llmmon_gpu_energy_joules_total{{{GPU}}}[{RI}])", "GPU {{gpu}} {{instance}}")],
        "watt", w=8, description="""Average power from the energy counter: joules per second
        over each window, the true average rather than a sample.""")
    load = """ From NVML's energy counter read before and after each load probe (endpoints
    with load:, the GPU sampler on): every GPU of llmmon's host counts, so a GPU shared with
    other work, or several endpoints on one host, make it read high."""
    b.series("Load probe energy", [(f"llmmon_load_energy_joules{{{EP}}}", E)], "joule", w=8,
             description="GPU energy the last load probe of each endpoint used." + load)
    b.series("Energy per output token (load probe)", [
        (f"llmmon_load_energy_joules_per_output_token{{{EP}}}", E)], "joule", w=8,
        description="Joules of GPU energy per output token the last load probe served: "
        "the energy cost of a token under concurrency. Falls as batches grow; rises with a "
        "throttled or idle-heavy GPU." + load)
    b.series("Output tokens per joule (load probe)", [
        (f"llmmon_load_output_tokens_per_joule{{{EP}}}", E)], "short", w=8,
        description="Output tokens the last load probe served per joule of GPU energy (the "
        "inverse of energy per token): energy efficiency, to compare models, quantisations "
        "and servers on the same GPUs." + load)
    b.series("Clocks", [(f"llmmon_gpu_clock_hertz{{{GPU}}}", "{{clock}} {{gpu}} {{instance}}")],
             "hertz", w=8, description="""Current SM, memory and graphics clocks. A drop
             under load with a throttle reason active is the GPU slowing itself down.""")
    b.series("Clock throttle reasons", [(
        f'llmmon_gpu_throttle_active{{{GPU}, reason!="gpu_idle"}} == 1',
        "{{reason}} {{gpu}} {{instance}}")], "none", w=8,
        description="""Reasons the clocks are held down right now; only active ones are drawn
        (idle aside). sw_power_cap under load is common; thermal or hw_slowdown is not.""")
    b.series("Fan speed", [(f"llmmon_gpu_fan_speed_ratio{{{GPU}}}", "GPU {{gpu}} {{instance}}")],
             "percentunit", w=8, maximum=1, description="""Fan speed as a share of its
             maximum; follows temperature. Empty on passively cooled data-centre GPUs (the
             chassis fans cool them).""")
    b.bars("ECC errors", [(
        f"sum by (namespace, job, instance, gpu, type) (increase(llmmon_gpu_ecc_errors_total"
        f"{{{GPU}}}[{BAR}]))", "{{type}} {{gpu}} {{instance}}")], "short", w=8, interval="1m",
        thresholds=[(None, "green"), (1, "red")],
        description="""Memory ECC errors per bar, by type. Corrected errors in small numbers
        are harmless; uncorrected ones kill the process using the memory.""")
    b.series("PCIe throughput", [
        (f"llmmon_gpu_pcie_rx_bytes_per_second{{{GPU}}}", "rx {{gpu}} {{instance}}"),
        (f"llmmon_gpu_pcie_tx_bytes_per_second{{{GPU}}}", "tx {{gpu}} {{instance}}")], "Bps",
        w=8, description="""PCIe throughput to and from each GPU (over the sample interval with
        GPM, else NVML's last 20 ms). High during weight loading and CPU offload.""")
    b.series("GPU memory by process", [(
        f"llmmon_gpu_process_memory_used_bytes{{{GPU}}}", "{{process}} ({{pid}}) GPU {{gpu}}")],
        "bytes", w=8, description="""Device memory each process holds on each GPU: who owns
        the memory when two servers share a GPU. A serving engine holds a flat block (weights
        plus the KV cache it reserves at start).""")
    b.series("Kernel time and memory bus (NVML utilisation)", [
        (f"llmmon_gpu_utilization_ratio{{{GPU}}}", "kernel time {{gpu}} {{instance}}"),
        (f"llmmon_gpu_memory_utilization_ratio{{{GPU}}}", "memory bus {{gpu}} {{instance}}")],
        "percentunit", w=8, maximum=1, description="Share of time any kernel ran, and the "
        "memory bus was busy: a busy signal, not a saturation one (see SM activity).")
    b.series("Tensor cores, occupancy, DRAM bandwidth (GPM)", [
        (f"llmmon_gpu_tensor_active_ratio{{{GPU}, {gpm}}}", "tensor {{gpu}} {{instance}}"),
        (f"llmmon_gpu_sm_occupancy_ratio{{{GPU}, {gpm}}}", "occupancy {{gpu}} {{instance}}"),
        (f"llmmon_gpu_dram_bandwidth_utilization_ratio{{{GPU}, {gpm}}}",
         "DRAM bandwidth {{gpu}} {{instance}}")], "percentunit", w=8, maximum=1,
        description="GPM, over each sample interval; absent on GPUs before Hopper. Decode is "
        "usually bound by DRAM bandwidth, prefill by the tensor cores.")
    b.series("SM activity by MIG instance (GPM)", [(
        f'llmmon_gpu_sm_active_ratio{{{GPU}, gpu_instance!=""}}',
        "GPU {{gpu}} instance {{gpu_instance}}")], "percentunit", w=8, maximum=1,
        description="Share of SMs busy in each MIG instance. Only GPUs in MIG mode have "
        "instances: empty otherwise.")
    b.series("NVLink throughput (GPM)", [
        (f"llmmon_gpu_nvlink_rx_bytes_per_second{{{GPU}}}", "rx {{gpu}} {{instance}}"),
        (f"llmmon_gpu_nvlink_tx_bytes_per_second{{{GPU}}}", "tx {{gpu}} {{instance}}")], "Bps",
        w=8, description="""NVLink throughput, all links (GPM). Tensor-parallel serving moves
        activations over it on every layer; empty without NVLink or GPM.""")
    b.series("SM utilisation by process", [(
        f"llmmon_gpu_process_sm_utilization_ratio{{{GPU}}}",
        "{{process}} ({{pid}}) GPU {{gpu}}")], "percentunit", w=8, maximum=1,
        description="""Each process's share of the GPU's SM time over the last sample
        period: who keeps the GPU busy when several processes share it. One process at the
        GPU's whole SM activity is the normal case.""")
    b.series("Clocks held down (violation time)", [(
        f"rate(llmmon_gpu_violation_seconds_total{{{GPU}}}[{RI}])",
        "{{policy}} {{gpu}} {{instance}}")], "percentunit", w=8, maximum=1,
        description="""Share of time the clocks were held below their target, by policy
        (power, thermal, ...): seconds of violation per second.""")
    b.bars("Critical XID events", [(
        f"sum by (namespace, job, instance, gpu, xid) (increase(llmmon_gpu_xid_errors_total"
        f"{{{GPU}}}[{BAR}])) > 0", "XID {{xid}} GPU {{gpu}} {{instance}}")], "short", w=8,
        interval="1m", thresholds=[(None, "green"), (1, "red")],
        description="""Critical XID events per bar, by code; only codes that occurred are
        drawn. 48, 79 and 95 mean the GPU needs a reset; 13 and 31 are usually the
        application's fault.""")
    b.series("Memory repair (remapped rows, retired pages)", [
        (f"llmmon_gpu_remapped_rows{{{GPU}}}", "rows {{type}} {{gpu}} {{instance}}"),
        (f"llmmon_gpu_retired_pages{{{GPU}}}", "pages {{cause}} {{gpu}} {{instance}}"),
        (f"llmmon_gpu_row_remap_pending{{{GPU}}}", "reset pending {{gpu}} {{instance}}")],
        "short", w=8, description="""Rows remapped (Ampere and later) or pages retired
        (before) after memory errors, and whether a remapping waits for a GPU reset. A few are
        normal over a GPU's life; a pending remap needs a reset.""")
    b.series("NVML cost per call", [(
        f"rate(llmmon_gpu_nvml_call_seconds_total{{{SEL}}}[{RI}]) / "
        f"(rate(llmmon_gpu_nvml_calls_total{{{SEL}}}[{RI}]) > 0)", "{{function}} {{instance}}")],
        "s", w=8, description="""What each NVML function costs the GPU sampler per call.
        Microseconds to milliseconds is normal; seconds point at a driver in trouble.""")

    b.row("Model server process")
    b.stat("Server process up", [(f"llmmon_target_process_up{{{SEL}}}",
                                  "{{target}} {{instance}}")], "none", w=6, mappings=UP_MAP,
           thresholds=[(None, "red"), (1, "green")], background=True,
           description="""Whether a process matches each configured target (pidfile, name or
           command line): down while the model server is not running.""")
    b.series("Server process CPU", [(
        f"rate(llmmon_target_process_cpu_seconds_total{{{SEL}}}[{RI}])",
        "{{target}} {{instance}}")], "short", w=6,
        description="""Cores used by the model server process (user and system). A GPU server
        spends one core or so feeding the GPU; more is tokenisation or CPU offload.""")
    b.series("Server process memory", [
        (f"llmmon_target_process_resident_memory_bytes{{{SEL}}}", "RSS {{target}} {{instance}}"),
        (f"llmmon_target_process_gpu_memory_bytes{{{SEL}}}", "GPU {{target}} {{instance}}")],
        "bytes", w=6, description="""Resident memory of the model server process, and the
        device memory it holds on all GPUs summed. Both are flat once the weights are loaded;
        RSS growing under steady load is a leak.""")
    b.series("GPU SM share", [(
        f"llmmon_target_process_gpu_sm_utilization_ratio{{{SEL}}}",
        "{{target}} GPU {{gpu}} {{instance}}")], "percentunit", w=6, maximum=1,
        description="""The model server process's own share of each GPU's SM time (when
        other processes share the GPU, its part of the busy time). Near the GPU's SM activity
        when the server is alone on it.""")
    b.series("Threads and open files", [
        (f"llmmon_target_process_threads{{{SEL}}}", "threads {{target}} {{instance}}"),
        (f"llmmon_target_process_open_fds{{{SEL}}}", "fds {{target}} {{instance}}")], "short",
        w=6, description="""Threads and open file descriptors of the model server process:
        flat is normal, steady growth is a leak.""")
    self_health(b)
    return b.dashboard(UID["resources"], "LLM resources",
                       "The machine under the model: host, container, GPUs, server process.",
                       [DATASOURCE, NAMESPACE, JOB, INSTANCE, GPU_VAR, LLM_ENDPOINT],
                       [link("endpoints", "LLM endpoints")])


DASHBOARDS = {"llm-endpoints.json": endpoints, "llm-resources.json": resources}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
            for name, build in DASHBOARDS.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stale = []
    for name, text in render().items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            OUT.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date: " + ", ".join(stale) + "; run python grafana/build_dashboards.py")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
