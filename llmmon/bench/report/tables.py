"""The tabular reports of a run: CSV (a row per step) and Markdown (a summary)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from llmmon.bench.model import PERCENTILES, BenchRun, StepSummary
from llmmon.bench.report.text import (
    NONE,
    _by_load,
    _errors_text,
    _knee_text,
    _load,
    _model_line,
    _objectives,
    _pct,
    _plain,
    _rate,
    _safe_url,
    _saturation_text,
    _setting,
    _time,
)

# --- CSV -----------------------------------------------------------------------------------


def _stat(name: str, which: str) -> Callable[[StepSummary], Any]:
    return lambda s: getattr(getattr(s, name), which)


def _server(name: str) -> Callable[[StepSummary], Any]:
    return lambda s: getattr(s.server, name) if s.server is not None else None


# (column, value): times in seconds, shares as fractions 0..1, as in the JSON record.
CSV_COLUMNS: list[tuple[str, Callable[[StepSummary], Any]]] = [
    ("mode", lambda s: s.mode),
    ("load", lambda s: s.load),
    ("requests", lambda s: s.requests),
    ("succeeded", lambda s: s.succeeded),
    ("duration_s", lambda s: s.duration),
    ("requests_per_second", lambda s: s.requests_per_second),
    ("output_tokens_per_second", lambda s: s.output_tokens_per_second),
    *((f"output_tokens_per_second_per_request_{p}",
       _stat("output_tokens_per_second_per_request", p)) for p in ("p50", "mean")),
    *((f"{metric}_{p}_s", _stat(metric, p))
      for metric in ("ttft", "itl", "tpot", "e2e") for p in PERCENTILES),
    ("error_ratio", lambda s: s.error_ratio),
    ("errors", lambda s: ";".join(f"{k}={v}" for k, v in sorted(s.errors.items()))),
    ("goodput", lambda s: s.goodput),
    ("achieved_concurrency", lambda s: s.achieved_concurrency),
    ("accuracy", lambda s: s.accuracy),
    ("output_tokens", lambda s: s.output_tokens),
    ("prompt_tokens_mean", lambda s: s.prompt_tokens_mean),
    ("output_tokens_mean", lambda s: s.output_tokens_mean),
    ("client_cpu_seconds", lambda s: s.client_cpu_seconds),
    ("client_cpu_per_event_us", lambda s: s.client_cpu_per_event_us),
    ("client_saturated", lambda s: s.client_saturated),
    ("server_queue_mean", _server("queue_mean")),
    ("server_queue_max", _server("queue_max")),
    ("server_running_mean", _server("running_mean")),
    ("server_running_max", _server("running_max")),
    ("server_kv_cache_mean", _server("kv_cache_mean")),
    ("server_kv_cache_max", _server("kv_cache_max")),
]


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)  # floats as repr: read back exactly


def to_csv(run: BenchRun) -> str:
    """One row per step, in the order run; an empty cell where nothing was measured."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(name for name, _ in CSV_COLUMNS)
    for step in run.steps:
        writer.writerow(_csv_cell(get(step)) for _, get in CSV_COLUMNS)
    return out.getvalue()


# --- Markdown --------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#])")


def _md(text: Any) -> str:
    """A string from the run as Markdown text: no markup of its own, one line, and no `|` to
    break a table."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _md_table(head: Sequence[str], rows: Iterable[Sequence[str]],
              right: Sequence[bool] | None = None) -> list[str]:
    align = ["---:" if r else ":---" for r in (right or [True] * len(head))]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def to_markdown(run: BenchRun) -> str:
    """A summary: the endpoint and its model, the objectives, the knee, a table of the steps
    and one per step, and a warning naming any step where the client was saturated."""
    ep = run.endpoint
    lines = [f"# llmmon bench: {_md(ep.get('name', 'endpoint'))}", ""]
    provider = f" ({_md(ep['provider'])})" if ep.get("provider") else ""
    lines.append(f"- **Endpoint:** {_md(ep.get('name', ''))}{provider}, "
                 f"{_md(_safe_url(ep.get('url')))}")
    if ep.get("model"):
        lines.append(f"- **Requested model:** {_md(ep['model'])}")
    lines.append(f"- **Served model:** {_md(_model_line(run.model))}")
    lines.append("- **Sweep:** " + _md("; ".join(f"{k}: {_setting(v)}"
                                                  for k, v in run.settings.items())))
    lines.append(f"- **Objectives (goodput):** {_md(_objectives(run.objectives))}")
    lines.append(f"- **Knee:** {_md(_knee_text(run))}")
    lines.append(f"- **Started:** {_md(run.started)}"
                 + (f", llmmon {_md(run.llmmon_version)}" if run.llmmon_version else ""))
    lines.append("")
    if warning := _saturation_text(run):
        lines += [f"> **Warning:** {_md(warning)}.", ""]
    if not run.steps:
        return "\n".join(lines + ["No steps were run.", ""])

    lines += ["## Steps", ""]
    head = ["load", "requests (ok)", "req/s", "output tok/s", "TTFT p50", "TTFT p90",
            "TTFT p99", "ITL p50", "ITL p99", "errors", "goodput", "accuracy",
            "in flight", "client CPU/event"]
    rows = []
    for s in _by_load(run):
        mark = (" (knee)" if run.knee is not None and s.load == run.knee else "") + (
            " ⚠ client saturated" if s.client_saturated else "")
        rows.append([
            _md(_load(s.mode, s.load)) + mark, f"{s.requests} ({s.succeeded})",
            _rate(s.requests_per_second), _rate(s.output_tokens_per_second),
            _time(s.ttft.p50), _time(s.ttft.p90), _time(s.ttft.p99), _time(s.itl.p50),
            _time(s.itl.p99), _pct(s.error_ratio), _pct(s.goodput), _pct(s.accuracy),
            _plain(s.achieved_concurrency),
            f"{_plain(s.client_cpu_per_event_us)} µs"
            if s.client_cpu_per_event_us is not None else NONE])
    lines += _md_table(head, rows, [False] + [True] * (len(head) - 1))
    lines.append("")

    for s in _by_load(run):
        title = _load(s.mode, s.load)
        if run.knee is not None and s.load == run.knee:
            title += " (knee)"
        lines += [f"### {_md(title)}", ""]
        rows = [[name] + [_time(getattr(stats, p)) for p in PERCENTILES] + [str(stats.count)]
                for name, stats in (("TTFT", s.ttft), ("ITL", s.itl), ("TPOT", s.tpot),
                                    ("E2E", s.e2e))]
        per_req = s.output_tokens_per_second_per_request
        rows.append(["output tok/s per request"]
                    + [_rate(getattr(per_req, p)) for p in PERCENTILES] + [str(per_req.count)])
        lines += _md_table(["metric", *PERCENTILES, "n"], rows, [False] + [True] * 6)
        facts = [f"{s.requests} requests, {s.succeeded} succeeded in {s.duration:.1f} s",
                 f"{_rate(s.requests_per_second)} req/s, "
                 f"{_rate(s.output_tokens_per_second)} output tok/s "
                 f"({s.output_tokens:,} tokens)",
                 f"goodput {_pct(s.goodput)}, errors {_pct(s.error_ratio)}"
                 + (f" ({_md(_errors_text(s.errors))})" if s.errors else ""),
                 f"{_plain(s.achieved_concurrency)} requests in flight on average"]
        if s.accuracy is not None:
            facts.append(f"answer checks passed: {_pct(s.accuracy)}")
        if s.prompt_tokens_mean is not None or s.output_tokens_mean is not None:
            facts.append(f"tokens per request as the server counted them: "
                         f"{_plain(s.prompt_tokens_mean)} in, {_plain(s.output_tokens_mean)} out")
        if s.server is not None:
            facts.append(f"server: queue {_plain(s.server.queue_mean)} "
                         f"(max {_plain(s.server.queue_max, 0)}), running "
                         f"{_plain(s.server.running_mean)} (max "
                         f"{_plain(s.server.running_max, 0)}), KV cache "
                         f"{_pct(s.server.kv_cache_mean)} (max {_pct(s.server.kv_cache_max)})")
        cpu = (f"{s.client_cpu_per_event_us:.1f} µs per streamed event"
               if s.client_cpu_per_event_us is not None else "no events")
        facts.append(f"client CPU {s.client_cpu_seconds:.2f} s, {cpu}"
                     + (" — **saturated**" if s.client_saturated else ""))
        lines += [""] + [f"- {f}" for f in facts] + [""]
    return "\n".join(lines)
