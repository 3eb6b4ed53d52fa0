"""The bench reports (llmmon/bench/report.py): JSON read back whole, CSV a row per step,
Markdown naming the knee and a saturated client, and the self-contained HTML with its five
plots, parsed and escaped, and rendered by a real headless Chromium.

The run is built here from literal numbers (a 1, 2, 4, 8 concurrency sweep), so a test reads
its expectations straight off it."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import pytest

from llmmon.bench.model import (
    BenchRun,
    ModelInfo,
    ServerSample,
    Stats,
    StepSummary,
    load_run,
)
from llmmon.bench.report import (
    compare_html,
    compare_markdown,
    nice_axis,
    pareto_front,
    to_csv,
    to_html,
    to_json,
    to_markdown,
    write_reports,
)

PLOTS = {"throughput", "ttft", "itl", "pareto", "errors"}
LOAD_PLOTS = {"throughput", "ttft", "itl", "errors"}  # the ones with load on x: knee marked
HOSTILE = "<script>alert(1)</script>"


def _stats(p50: float, p90: float, p95: float, p99: float, mean: float, count: int) -> Stats:
    return Stats(p50=p50, p90=p90, p95=p95, p99=p99, mean=mean, count=count)


# load: (requests/s, output tokens/s, TTFT, ITL, error ratio, goodput, in flight,
#        client CPU µs per event, client saturated)
SWEEP: dict[int, tuple[Any, ...]] = {
    1: (1.9, 243.2, (0.041, 0.048, 0.052, 0.061, 0.043), (0.0040, 0.0046, 0.0049, 0.0058,
                                                          0.0041), 0.0, 1.0, 0.98, 11.2, False),
    2: (3.6, 460.8, (0.045, 0.055, 0.060, 0.071, 0.047), (0.0042, 0.0049, 0.0053, 0.0062,
                                                          0.0043), 0.0, 1.0, 1.97, 11.5, False),
    4: (6.5, 832.0, (0.062, 0.090, 0.101, 0.130, 0.068), (0.0048, 0.0061, 0.0066, 0.0081,
                                                          0.0050), 0.0, 0.98, 3.91, 12.0, False),
    8: (7.9, 1011.2, (0.190, 0.410, 0.480, 0.620, 0.230), (0.0071, 0.0102, 0.0118, 0.0160,
                                                           0.0075), 0.025, 0.71, 7.62, 48.9,
        True),
}


def _step(load: int) -> StepSummary:
    rps, tps, ttft, itl, error_ratio, goodput, in_flight, cpu_us, saturated = SWEEP[load]
    requests = 80
    failed = round(requests * error_ratio)
    tpot = tuple(v * 1.02 for v in itl)
    e2e = tuple(t + 127 * i for t, i in zip(ttft, itl, strict=True))
    return StepSummary(
        mode="concurrency", load=float(load), requests=requests, succeeded=requests - failed,
        duration=requests / rps, requests_per_second=rps, output_tokens_per_second=tps,
        output_tokens_per_second_per_request=_stats(tps / load, tps / load * 1.1,
                                                     tps / load * 1.12, tps / load * 1.2,
                                                     tps / load, requests - failed),
        ttft=_stats(*ttft, requests - failed), itl=_stats(*itl, (requests - failed) * 127),
        tpot=_stats(*tpot, requests - failed), e2e=_stats(*e2e, requests - failed),
        errors={"timeout": failed} if failed else {}, error_ratio=error_ratio,
        goodput=goodput, achieved_concurrency=in_flight, accuracy=0.95 if load < 8 else None,
        output_tokens=(requests - failed) * 128, client_cpu_seconds=0.4 * load,
        client_cpu_per_event_us=cpu_us, client_saturated=saturated,
        server=ServerSample(queue_mean=max(0.0, load - 4.0), queue_max=max(0.0, load - 3.0),
                            running_mean=min(load, 4) * 0.97, running_max=min(load, 4),
                            kv_cache_mean=0.05 * load, kv_cache_max=0.06 * load, samples=20),
        prompt_tokens_mean=512.0, output_tokens_mean=128.0)


def sample_run(served_model: str = "SmolLM2-135M-Instruct") -> BenchRun:
    return BenchRun(
        endpoint={"name": "llama-local", "provider": "openai",
                  "url": "http://user:secret@127.0.0.1:8080/v1?token=abc",
                  "model": "smollm2"},
        settings={"mode": "concurrency", "loads": [1, 2, 4, 8], "requests": 80,
                  "warmup": 4, "input_tokens": 512, "output_tokens": 128},
        objectives={"ttft": 0.5, "tpot": 0.05},
        started="2025-01-02T03:04:05Z",
        model=ModelInfo(served_model=served_model, parameters=134_515_008,
                        size_bytes=90_240_000, context_length=8192, quantization="Q4_1",
                        source="/v1/models"),
        steps=[_step(load) for load in SWEEP], knee=4.0, llmmon_version="0.9.0")


def none_step(load: float = 1.0) -> StepSummary:
    """A step where nothing succeeded: every statistic None."""
    return StepSummary(
        mode="concurrency", load=load, requests=5, succeeded=0, duration=1.0,
        requests_per_second=0.0, output_tokens_per_second=0.0,
        output_tokens_per_second_per_request=Stats(), ttft=Stats(), itl=Stats(), tpot=Stats(),
        e2e=Stats(), errors={"connect": 5}, error_ratio=1.0, goodput=0.0,
        achieved_concurrency=0.0, accuracy=None, output_tokens=0, client_cpu_seconds=0.01,
        client_cpu_per_event_us=None, client_saturated=False)


# --- parsing the HTML ------------------------------------------------------------------------


class Page(HTMLParser):
    """Every start tag with its attributes, the text, and the <svg> elements by data-plot."""

    VOID: ClassVar[set[str]] = {"meta", "br", "hr", "img", "input", "link", "source", "area",
                                "base", "col", "embed", "param", "track", "wbr"}

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.open: list[str] = []
        self.svgs: dict[str, list[tuple[str, dict[str, str | None]]]] = {}
        self.svg_text: dict[str, list[str]] = {}
        self.current: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "svg":
            assert self.current is None, "an <svg> inside an <svg>"
            self.current = attributes.get("data-plot") or ""
            assert self.current not in self.svgs, f"two plots {self.current!r}"
            self.svgs[self.current], self.svg_text[self.current] = [], []
        elif self.current is not None:
            self.svgs[self.current].append((tag, attributes))
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if self.current is not None:
            self.svgs[self.current].append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.open[-1:] == [tag], f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()
        if tag == "svg":
            self.current = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.current is not None:
            self.svg_text[self.current].append(data)

    def all_text(self) -> str:
        return "".join(self.text)


def parse(text: str) -> Page:
    page = Page(text)
    assert not page.open, f"unclosed elements: {page.open}"
    return page


def assert_self_contained(page: Page, text: str) -> None:
    for tag, attrs in page.tags:
        assert tag not in {"script", "link", "iframe", "img", "object", "embed"}, tag
        for name, value in attrs.items():
            assert not name.startswith("on"), f"<{tag} {name}>: an event handler"
            if name in {"src", "href", "xlink:href", "action", "data", "poster"}:
                raise AssertionError(f"<{tag} {name}={value!r}>: a reference")
            assert not (value or "").lower().startswith(("http://", "https://", "//")), \
                (tag, name, value)
    assert "url(" not in text
    assert "@import" not in text


# --- JSON, CSV, files --------------------------------------------------------------------------


def test_json_round_trips_through_load_run() -> None:
    run = sample_run()
    text = to_json(run)
    assert load_run(json.loads(text)) == run
    assert json.loads(text)["schema"] == "llmmon.bench/1"
    one = replace(run, steps=[none_step()], knee=None, model=ModelInfo())
    assert load_run(json.loads(to_json(one))) == one


def test_write_reports_writes_each_format(tmp_path: Path) -> None:
    run = sample_run()
    paths = write_reports(run, tmp_path / "out", stem="sweep")
    assert [p.name for p in paths] == ["sweep.json", "sweep.csv", "sweep.md", "sweep.html"]
    assert load_run(json.loads(paths[0].read_text())) == run
    assert paths[3].read_text(encoding="utf-8") == to_html(run)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        p.name for p in paths), "no temporary files left behind"
    assert write_reports(run, tmp_path, formats=["md"]) == [tmp_path / "bench.md"]
    with pytest.raises(ValueError, match="pdf"):
        write_reports(run, tmp_path, formats=["json", "pdf"])


def test_csv_has_a_header_and_a_row_per_step() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(sample_run()))))
    assert len(rows) == 4
    for column in ("mode", "load", "requests", "succeeded", "requests_per_second",
                   "output_tokens_per_second", "error_ratio", "goodput",
                   "achieved_concurrency", "accuracy", "client_cpu_per_event_us",
                   "client_saturated", "server_queue_mean", "server_running_mean",
                   "server_kv_cache_mean"):
        assert column in rows[0], column
    for metric in ("ttft", "itl", "tpot", "e2e"):
        for p in ("p50", "p90", "p95", "p99", "mean"):
            assert f"{metric}_{p}_s" in rows[0]
    by_load = {float(r["load"]): r for r in rows}
    assert sorted(by_load) == [1.0, 2.0, 4.0, 8.0]
    four, eight = by_load[4.0], by_load[8.0]
    assert four["mode"] == "concurrency"
    assert float(four["ttft_p90_s"]) == 0.090
    assert float(four["itl_p99_s"]) == 0.0081
    assert float(four["output_tokens_per_second"]) == 832.0
    assert float(four["requests_per_second"]) == 6.5
    assert float(four["goodput"]) == 0.98
    assert float(four["server_queue_mean"]) == 0.0
    assert four["client_saturated"] == "false"
    assert eight["client_saturated"] == "true"
    assert (int(eight["requests"]), int(eight["succeeded"])) == (80, 78)
    assert float(eight["error_ratio"]) == 0.025
    assert eight["errors"] == "timeout=2"
    assert eight["accuracy"] == "", "None is an empty cell"
    assert float(eight["client_cpu_per_event_us"]) == 48.9


def test_csv_of_a_step_without_data() -> None:
    run = replace(sample_run(), steps=[none_step()], knee=None)
    (row,) = csv.DictReader(io.StringIO(to_csv(run)))
    assert row["ttft_p50_s"] == ""
    assert row["server_queue_mean"] == ""
    assert row["errors"] == "connect=5"
    assert row["error_ratio"] == "1.0"


# --- Markdown ------------------------------------------------------------------------------------


def test_markdown_names_the_model_the_knee_and_a_saturated_client() -> None:
    text = to_markdown(sample_run())
    assert text.startswith("# llmmon bench: llama-local")
    assert "SmolLM2-135M-Instruct, 135M parameters, Q4\\_1, 8,192-token context" in text
    assert "**Knee:** concurrency 4" in text
    assert "TTFT ≤ 500 ms" in text
    assert "TPOT ≤ 50.0 ms" in text
    (warning,) = [line for line in text.splitlines() if line.startswith("> **Warning:**")]
    assert "saturated at concurrency 8" in warning
    assert "48.9 µs" in warning
    assert "concurrency 4" not in warning
    # the summary table: a row per step, the knee and the saturated step marked in it
    rows = [line for line in text.splitlines() if line.startswith("| concurrency")]
    assert len(rows) == 4
    assert "(knee)" in rows[2]
    assert "⚠ client saturated" in rows[3]
    assert "| 90.0 ms |" in rows[2]  # TTFT p90 at concurrency 4
    # a table per step
    assert [line for line in text.splitlines() if line.startswith("### ")] == [
        "### concurrency 1", "### concurrency 2", "### concurrency 4 (knee)",
        "### concurrency 8"]
    assert "secret" not in text, "no userinfo"
    assert "token=abc" not in text, "no query"


def test_markdown_escapes_the_run_s_strings() -> None:
    text = to_markdown(sample_run(served_model="evil | <b>model</b>\n# heading"))
    assert "evil \\| \\<b\\>model\\</b\\> \\# heading" in text
    assert "\n# heading" not in text


def test_markdown_of_no_knee_and_no_data() -> None:
    run = replace(sample_run(), steps=[none_step()], knee=None, model=ModelInfo())
    text = to_markdown(run)
    assert "**Knee:** none: no load met the objectives" in text
    assert "Warning" not in text
    assert "unknown" in text  # the served model


# --- HTML ---------------------------------------------------------------------------------------


def test_html_is_one_self_contained_file_with_the_five_plots() -> None:
    text = to_html(sample_run())
    page = parse(text)
    assert set(page.svgs) == PLOTS
    assert text.count("<svg") == 5
    assert_self_contained(page, text)
    for kind, elements in page.svgs.items():
        words = " ".join(page.svg_text[kind])
        assert any(t == "g" and a.get("class") == "legend" for t, a in elements), kind
        titles = [a for t, a in elements if t == "text" and a.get("class") == "axis-title"]
        assert len(titles) >= 2, f"{kind}: axis titles"
        assert re.search(r"\(.+\)", words), f"{kind}: units in the axis titles"
        assert sum(t == "text" for t, _ in elements) >= 12, f"{kind}: tick labels"
        knee = any(t == "g" and a.get("class") == "knee" for t, a in elements)
        assert knee == (kind in LOAD_PLOTS), kind
    words = {k: " ".join(v) for k, v in page.svg_text.items()}
    assert "output tokens/s" in words["throughput"]
    assert "requests/s" in words["throughput"]
    assert all(p in words["ttft"] for p in ("p50", "p90", "p99"))
    assert "TTFT (ms)" in words["ttft"]
    assert "ITL (ms)" in words["itl"]
    assert "TTFT p90 (ms)" in words["pareto"]
    assert "Pareto front" in words["pareto"]
    assert "error ratio" in words["errors"]
    assert "goodput" in words["errors"]
    assert "100" in words["errors"]
    assert "(%)" in words["errors"]
    # the identity block and the summary table
    body = page.all_text()
    for fact in ("SmolLM2-135M-Instruct", "135M (134,515,008)", "Q4_1", "8,192 tokens",
                 "86.1 MiB", "/v1/models", "llama-local", "http://127.0.0.1:8080/v1"):
        assert fact in body, fact
    assert "secret" not in text
    assert "token=abc" not in text
    rows = [a for t, a in page.tags if t == "tr" and a.get("class")]
    assert [a["class"] for a in rows] == ["knee", "saturated"] * 2  # in both tables
    assert "Client saturated" in body


def test_html_pareto_plot_labels_each_load_and_highlights_the_front() -> None:
    page = parse(to_html(sample_run()))
    elements = page.svgs["pareto"]
    labels = [i for i, (t, a) in enumerate(elements) if a.get("class") == "point-label"]
    assert len(labels) == 4
    # every step here is on the front: more throughput at each step, and more latency
    assert sum(a.get("class") == "front" for _, a in elements) == 4
    assert any(a.get("class") == "pareto-front" for _, a in elements)
    assert {"1", "2", "4", "8"} <= set(page.svg_text["pareto"])
    assert "dominated step" not in page.svg_text["pareto"]
    # an overloaded step: less throughput than at 8, and more latency: off the front
    run = sample_run()
    run.steps.append(replace(_step(8), load=16.0, output_tokens_per_second=950.0,
                             ttft=_stats(0.5, 0.9, 1.0, 1.2, 0.6, 78)))
    page = parse(to_html(run))
    elements = page.svgs["pareto"]
    assert sum(a.get("class") == "front" for _, a in elements) == 4
    hollow = [a for t, a in elements if t == "circle" and a.get("fill") == "#fff"
              and a.get("class") != "front"]
    assert len(hollow) == 2  # the step, and its legend entry
    assert "dominated step" in page.svg_text["pareto"]
    assert "16" in page.svg_text["pareto"]


@pytest.mark.parametrize("name", [HOSTILE, '"><img src=x onerror=alert(1)>'])
def test_html_escapes_the_run_s_strings(name: str) -> None:
    run = sample_run(served_model=name)
    run.endpoint["name"] = name
    run.endpoint["model"] = name
    run.steps[3].errors = {name: 2}
    run.settings["dataset"] = name
    text = to_html(run)
    page = parse(text)
    assert_self_contained(page, text)
    assert page.all_text().count(name) >= 5, "shown as text, everywhere"
    assert all(t != "script" for t, _ in page.tags)


def test_html_survives_a_step_without_data_and_a_single_step() -> None:
    one = replace(sample_run(), steps=[_step(4)])
    page = parse(to_html(one))
    assert set(page.svgs) == PLOTS
    empty = replace(sample_run(), steps=[none_step()], knee=None, model=ModelInfo())
    page = parse(to_html(empty))
    assert set(page.svgs) == PLOTS
    for kind in ("ttft", "itl", "pareto"):
        assert "no data" in page.svg_text[kind], kind
    # a gap: a line breaks where a step has no data, and draws no point there
    gap = sample_run()
    gap.steps[1] = replace(none_step(2.0))
    page = parse(to_html(gap))
    paths = [a["d"] or "" for t, a in page.svgs["ttft"] if t == "path"]
    assert [d.count("M") for d in paths] == [2, 2, 2], paths
    points = [a for t, a in page.svgs["ttft"] if a.get("class") == "point"]
    assert len(points) == 3 * 3  # three series at three loads
    none_at_all = replace(sample_run(), steps=[], knee=None)
    assert set(parse(to_html(none_at_all)).svgs) == PLOTS


def test_nice_axis_ticks() -> None:
    axis = nice_axis([243.2, 460.8, 832.0, 1011.2])
    assert axis.lo == 0
    assert axis.hi >= 1011.2
    assert axis.ticks == [0, 200, 400, 600, 800, 1000]
    assert axis.label(1000) == "1,000"
    small = nice_axis([0.0040, 0.0160])
    assert small.ticks == [0, 0.005, 0.01, 0.015]
    assert small.label(0.005) == "0.005"
    assert nice_axis([4.0], zero=False).ticks == [2, 3, 4, 5, 6]  # one value: room each side
    assert nice_axis([1.0], zero=False, integer=True).ticks == [0, 1, 2]
    assert nice_axis([1.0, 2.0], zero=False, integer=True).ticks == [1, 2]
    assert nice_axis([None, None]).ticks[0] == 0  # no data: still an axis
    assert nice_axis([0.0, 0.0]).hi > 0


def test_pareto_front() -> None:
    # (throughput, latency): higher throughput and lower latency both better
    points = [(100.0, 10.0), (200.0, 12.0), (150.0, 30.0), (300.0, 50.0), (250.0, 60.0)]
    assert pareto_front(points) == [0, 1, 3]
    assert pareto_front([(1.0, 1.0)]) == [0]
    assert pareto_front([]) == []


# --- compare ------------------------------------------------------------------------------------


def compare_result(a: str = "baseline", b: str = "candidate") -> dict[str, Any]:
    def metric(name: str, va: float, vb: float, low: float, high: float) -> dict[str, Any]:
        return {"metric": name, "a": va, "b": vb, "delta": vb - va,
                "relative": (vb - va) / va, "low": low, "high": high,
                "low_relative": low / va, "high_relative": high / va,
                "significant": low > 0 or high < 0}

    return {
        "endpoints": [a, b],
        "models": [{"served_model": "llama-3-8b", "parameters": 8_030_261_248,
                    "quantization": "Q4_K_M", "context_length": 8192, "size_bytes": 4_920_000_000,
                    "source": "/api/show"},
                   {"served_model": "llama-3-8b-ft", "parameters": 8_030_261_248}],
        "metrics": [metric("ttft_p95", 0.200, 0.220, 0.012, 0.028),
                    metric("itl_p50", 0.010, 0.0101, -0.0004, 0.0006),
                    metric("output_tokens_per_second", 800.0, 760.0, -55.0, -25.0),
                    {"metric": "error_ratio", "a": 0.0, "b": 0.01, "delta": 0.01,
                     "relative": None, "low": 0.0, "high": 0.02, "low_relative": None,
                     "high_relative": None, "significant": False}],
        "accuracy": {"rate_a": 0.92, "rate_b": 0.885, "delta_points": -3.5, "p_value": 0.041},
        "thresholds": [{"spec": "ttft_p95:+5%", "breached": True},
                       {"spec": "accuracy:-5pt", "breached": False}],
        "verdict": "fail",
    }


def test_compare_markdown() -> None:
    text = compare_markdown(compare_result())
    assert text.startswith("# llmmon compare: baseline vs candidate")
    assert "**Verdict: FAIL**" in text
    (ttft,) = [line for line in text.splitlines() if line.startswith("| ttft\\_p95")]
    assert "| 200 ms | 220 ms | +20.0 ms | +10.0 % | [+12.0 ms, +28.0 ms] |" in ttft
    assert "[+6.0 %, +14.0 %] | **yes** |" in ttft
    (itl,) = [line for line in text.splitlines() if line.startswith("| itl\\_p50")]
    assert itl.endswith("| no |")
    (errors,) = [line for line in text.splitlines() if line.startswith("| error\\_ratio")]
    assert "| 0.0 % | 1.0 % | +1.0 pt | — |" in errors
    assert "8.03B" in text
    assert "Q4\\_K\\_M" in text
    assert "92.0 %" in text
    assert "88.5 %" in text
    assert "-3.5 pt" in text
    assert "p = 0.041" in text
    assert "- `ttft_p95:+5%`: **breached**" in text
    assert "- `accuracy:-5pt`: met" in text


def test_compare_html_has_one_forest_plot() -> None:
    result = compare_result()
    text = compare_html(result)
    page = parse(text)
    assert_self_contained(page, text)
    assert list(page.svgs) == ["forest"]
    assert text.count("<svg") == 1
    forest = page.svgs["forest"]
    assert sum(a.get("class") == "zero" for _, a in forest) == 1
    # a whisker and an estimate for each metric with a relative change (error_ratio has none)
    assert sum(a.get("class") == "ci" for _, a in forest) == 3
    estimates = [a for _, a in forest if a.get("class") == "estimate"]
    assert len(estimates) == 3
    zero_x = float(next(a["x1"] or "" for _, a in forest if a.get("class") == "zero"))
    xs = [float(a["cx"] or "") for a in estimates]
    assert xs[0] > zero_x, "ttft: +10 %, right of 0"
    assert xs[2] < zero_x, "tokens/s: -5 %, left of 0"
    assert "n/a (no relative change)" in page.svg_text["forest"]
    body = page.all_text()
    assert "FAIL" in body
    assert "llama-3-8b-ft" in body
    assert "8.03B (8,030,261,248)" in body
    assert "[+6.0 %, +14.0 %]" in body
    assert "breached" in body
    passed = dict(result, verdict="pass", metrics=[])
    page = parse(compare_html(passed))
    assert "PASS" in page.all_text()
    assert "no data" in page.svg_text["forest"]


def test_compare_escapes_endpoint_names() -> None:
    result = compare_result(a=HOSTILE, b="b|`x`")
    result["models"][0]["served_model"] = HOSTILE
    text = compare_html(result)
    page = parse(text)
    assert_self_contained(page, text)
    assert HOSTILE in page.all_text()
    md = compare_markdown(result)
    assert "<script>" not in md
    assert "b\\|\\`x\\`" in md


# --- a real browser -----------------------------------------------------------------------------


def png_info(data: bytes) -> tuple[int, int, int, int]:
    """(width, height, non-white pixels, colourful pixels) of an 8-bit RGB(A) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, bytearray(), b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0)
    assert color in (2, 6), f"colour type {color}: not RGB(A)"
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(bytes(idat))
    stride = width * bpp
    prev = bytearray(stride)
    non_white = colourful = 0
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 255
        if line.count(255) != stride:  # not a blank row: count its pixels
            for x in range(0, stride, bpp):
                r, g, b = line[x], line[x + 1], line[x + 2]
                if r < 235 or g < 235 or b < 235:
                    non_white += 1
                    if max(r, g, b) - min(r, g, b) > 60:
                        colourful += 1
        prev = line
    return width, height, non_white, colourful


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        message = "no chromium: scripts/test installs it (Debian package chromium)"
        if os.environ.get("LLMMONTEST_REQUIRE_ALL"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.mark.timeout(180)
def test_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    """Chromium draws the page: a full-size screenshot, mostly white, with text, tables and
    the plots' coloured lines on it. LLMMONTEST_SCREENSHOT=FILE keeps a copy to look at."""
    chromium = _chromium()
    (page,) = write_reports(sample_run(), tmp_path, formats=["html"])
    shot = tmp_path / "report.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1280,2400", page.as_uri()],
        check=True, capture_output=True, timeout=150, env={**os.environ, "HOME": str(tmp_path)})
    data = shot.read_bytes()
    if keep := os.environ.get("LLMMONTEST_SCREENSHOT"):
        shutil.copyfile(shot, keep)
    assert len(data) > 50_000, f"a {len(data)}-byte screenshot is next to blank"
    width, height, non_white, colourful = png_info(data)
    assert (width, height) == (1280, 2400)
    share = non_white / (width * height)
    assert 0.02 < share < 0.6, f"{share:.1%} of the pixels are not white"
    assert colourful > 5_000, f"only {colourful} coloured pixels: the plots' lines are missing"
