"""The reports of a bench run and of a comparison: JSON (the full record), CSV (a row per
step), Markdown, and one self-contained HTML file with its plots drawn here as inline SVG.

The HTML loads nothing: no scripts, no fonts, no style sheets, no images from anywhere (its
Content-Security-Policy says so too, should a string from the run ever slip through), so it
opens offline and can be mailed or attached to a CI run as one file. Every string that comes
from the run (endpoint, URL, model names, error reasons, settings) is escaped."""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from llmmon.bench.model import PERCENTILES, BenchRun, ModelInfo, Stats, StepSummary

FORMATS = ("json", "csv", "md", "html")
NONE = "—"  # what a table shows where nothing was measured


# --- files ---------------------------------------------------------------------------------


def write_reports(run: BenchRun, out_dir: Path, stem: str = "bench",
                  formats: Sequence[str] = FORMATS) -> list[Path]:
    """Writes ``out_dir/stem.<ext>`` for each format (json, csv, md, html), each file whole
    or not at all (written beside it, then renamed). Returns the paths, in ``formats`` order."""
    unknown = [f for f in formats if f not in _RENDERERS]
    if unknown:
        raise ValueError(f"unknown report format {', '.join(unknown)}: "
                         f"choose from {', '.join(FORMATS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in dict.fromkeys(formats):
        path = out_dir / f"{stem}.{fmt}"
        _write_atomic(path, _RENDERERS[fmt](run))
        paths.append(path)
    return paths


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- JSON and CSV --------------------------------------------------------------------------


def to_json(run: BenchRun) -> str:
    """The whole record (``run.as_dict()``, read back by ``load_run``)."""
    return json.dumps(run.as_dict(), indent=2, ensure_ascii=False) + "\n"


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


# --- formatting ------------------------------------------------------------------------------


def _num(value: float) -> str:
    """A load or a count without a needless ".0"."""
    return f"{value:g}" if value == int(value) and abs(value) < 1e15 else f"{value:.3g}"


def _load(step_mode: str, load: float) -> str:
    return f"{_num(load)} req/s" if step_mode == "rate" else f"concurrency {_num(load)}"


def _time(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return NONE
    ms = seconds * 1000
    if abs(ms) >= 10_000:
        return f"{seconds:.2f} s"
    if abs(ms) >= 100:
        return f"{ms:,.0f} ms"
    if abs(ms) >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def _pct(share: float | None) -> str:
    return NONE if share is None or not math.isfinite(share) else f"{share * 100:.1f} %"


def _rate(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return NONE
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def _plain(value: float | None, digits: int = 1) -> str:
    return NONE if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _params(count: int) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.3g}{unit}"
    return str(count)


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _safe_url(url: Any) -> str:
    """A URL as a report shows it: no userinfo, no query, no fragment."""
    text = str(url or "")
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port is not None else ""
        return urlunsplit((parts.scheme, host + port, parts.path, "", ""))
    except ValueError:
        return text.split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1]


def _model_facts(model: ModelInfo) -> list[tuple[str, str]]:
    """What is known of the served model, as (label, value) pairs."""
    facts = []
    if model.served_model:
        facts.append(("served model", model.served_model))
    if model.parameters:
        facts.append(("parameters", f"{_params(model.parameters)} ({model.parameters:,})"))
    if model.quantization:
        facts.append(("quantization", model.quantization))
    if model.context_length:
        facts.append(("context length", f"{model.context_length:,} tokens"))
    if model.size_bytes:
        facts.append(("size", _bytes(model.size_bytes)))
    if model.source:
        facts.append(("as reported by", model.source))
    return facts


def _model_line(model: ModelInfo) -> str:
    """ "name, 135M parameters, Q4_1, 8,192 context, 86.0 MiB" (what is known)."""
    parts = [model.served_model or "unknown"]
    if model.parameters:
        parts.append(f"{_params(model.parameters)} parameters")
    if model.quantization:
        parts.append(model.quantization)
    if model.context_length:
        parts.append(f"{model.context_length:,}-token context")
    if model.size_bytes:
        parts.append(_bytes(model.size_bytes))
    return ", ".join(parts)


def _setting(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_setting(v) for v in value)
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_setting(v)}" for k, v in value.items())
    return str(value)


def _objectives(objectives: dict[str, Any]) -> str:
    parts = []
    for name, value in objectives.items():
        shown = _time(value) if isinstance(value, int | float) else str(value)
        parts.append(f"{name.upper() if len(name) <= 4 else name} ≤ {shown}")
    return ", ".join(parts) or "none"


def _knee_text(run: BenchRun) -> str:
    if run.knee is None:
        return "none: no load met the objectives" if run.steps else "none (no steps)"
    mode = run.steps[0].mode if run.steps else str(run.settings.get("mode", "concurrency"))
    return f"{_load(mode, run.knee)} (the highest load meeting the objectives)"


def _saturated(run: BenchRun) -> list[StepSummary]:
    return [s for s in run.steps if s.client_saturated]


def _saturation_text(run: BenchRun) -> str | None:
    steps = _saturated(run)
    if not steps:
        return None
    which = ", ".join(
        _load(s.mode, s.load) + (f" ({s.client_cpu_per_event_us:.1f} µs CPU per event)"
                                 if s.client_cpu_per_event_us is not None else "")
        for s in steps)
    return (f"the client was saturated at {which}: its CPU, not the server, may have set the "
            "pace there, so those numbers understate what the server can do")


def _errors_text(errors: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(errors.items(), key=lambda kv: -kv[1]))


def _by_load(run: BenchRun) -> list[StepSummary]:
    return sorted(run.steps, key=lambda s: s.load)


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


# --- SVG plots --------------------------------------------------------------------------------

W, H = 640, 380
FONT = 12
COLORS = {"blue": "#1f6fb4", "orange": "#e07b00", "red": "#c62828", "green": "#2e7d32",
          "grey": "#8a8f98", "purple": "#6a3d9a"}
PERCENTILE_COLORS = {"p50": COLORS["blue"], "p90": COLORS["orange"], "p99": COLORS["red"]}


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _f(value: float) -> str:
    """An SVG coordinate."""
    return f"{value:.1f}"


def _text_width(text: str, size: float = FONT) -> float:
    return len(text) * size * 0.6


def _nice(value: float, round_it: bool) -> float:
    """A "nice" number (1, 2 or 5 times a power of ten) near ``value``."""
    power = 10.0 ** math.floor(math.log10(value))
    frac = value / power
    if round_it:
        nice = 1 if frac < 1.5 else 2 if frac < 3 else 5 if frac < 7 else 10
    else:
        nice = 1 if frac <= 1 else 2 if frac <= 2 else 5 if frac <= 5 else 10
    return nice * power


@dataclass
class Axis:
    """A linear axis: its domain, and nice ticks inside it."""

    lo: float
    hi: float
    ticks: list[float]
    decimals: int
    suffix: str = ""

    def label(self, value: float) -> str:
        text = f"{value:,.{self.decimals}f}"
        return ("0" if text.strip("-0.,") == "" else text) + self.suffix


def nice_axis(values: Iterable[float | None], *, zero: bool = True, margin: float = 0.06,
              ticks: int = 5, suffix: str = "", integer: bool = False) -> Axis:
    """An axis over the finite values (from 0 when ``zero``), a margin beyond the data, and
    about ``ticks`` ticks at multiples of 1, 2 or 5 times a power of ten (of whole numbers
    only when ``integer``: a concurrency of 1.5 means nothing)."""
    data = [v for v in values if v is not None and math.isfinite(v)]
    lo, hi = (min(data), max(data)) if data else (0.0, 1.0)
    if zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-12 * max(1.0, abs(hi)):  # one value (or all alike)
        pad = max(abs(hi) * 0.5, 1.0 if integer else 0.0) or 1.0
        lo, hi = (lo - pad if lo < 0 or not zero else lo), hi + pad
    span = hi - lo
    hi += span * margin
    if not (zero and lo == 0):
        lo -= span * margin
    step = _nice((hi - lo) / max(1, ticks), True)
    if integer:
        step = max(step, 1.0)
    first = math.ceil(lo / step - 1e-9)
    marks = []
    i = first
    while i * step <= hi + 1e-9 * step:
        marks.append(round(i * step, 12))
        i += 1
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return Axis(lo, hi, marks, decimals, suffix)


def fixed_axis(lo: float, hi: float, ticks: Sequence[float], decimals: int = 0,
               suffix: str = "") -> Axis:
    return Axis(lo, hi, list(ticks), decimals, suffix)


@dataclass
class Legend:
    name: str
    color: str
    dash: str = ""
    marker: str = "circle"  # circle, hollow, square, ring, line, vline
    width: float = 2.0
    opacity: float = 1.0


@dataclass
class Series:
    name: str
    color: str
    points: list[tuple[float, float | None]]  # (x, y); y None: a gap
    dash: str = ""
    right: bool = False  # against the right-hand axis
    unit: str = ""  # for the tooltips
    marker: str = "circle"  # or "square": hollow, so a point under it shows through
    width: float = 2.0
    opacity: float = 1.0


class Frame:
    """A plot's frame: title, legend, grid, axes with tick labels and titles. Scales data
    to SVG coordinates."""

    def __init__(self, plot_id: str, title: str, x: Axis, y: Axis, x_title: str,
                 y_title: str, legend: Sequence[Legend], y2: Axis | None = None,
                 y2_title: str = "", height: int = H, left: float | None = None,
                 right: float | None = None, width: int = W,
                 title_x: float | None = None) -> None:
        self.plot_id, self.title, self.width = plot_id, title, width
        self.x, self.y, self.y2 = x, y, y2
        self.x_title, self.y_title, self.y2_title = x_title, y_title, y2_title
        self.height = height
        self.left = left if left is not None else 14 + FONT + 8 + max(
            (_text_width(y.label(t)) for t in y.ticks), default=20) + 8
        self.right = right if right is not None else width - (14 + FONT + 8 + max(
            (_text_width(y2.label(t)) for t in y2.ticks), default=20) + 8 if y2 else 28)
        self.title_x = self.left if title_x is None else title_x
        self.legend_rows = self._legend_layout(legend)
        # below the legend, room for the knee's label above the frame
        self.top = 34 + 18 * len(self.legend_rows) + 16
        self.bottom = height - 50

    def _legend_layout(self, legend: Sequence[Legend]) -> list[list[tuple[float, Legend]]]:
        rows: list[list[tuple[float, Legend]]] = [[]]
        x = self.title_x
        for item in legend:
            width = 30 + _text_width(item.name) + 18
            if rows[-1] and x + width > self.width - 10:
                rows.append([])
                x = self.title_x
            rows[-1].append((x, item))
            x += width
        return [r for r in rows if r]

    def sx(self, v: float) -> float:
        return self.left + (v - self.x.lo) / (self.x.hi - self.x.lo) * (self.right - self.left)

    def _sy(self, axis: Axis, v: float) -> float:
        return self.bottom - (v - axis.lo) / (axis.hi - axis.lo) * (self.bottom - self.top)

    def sy(self, v: float, right: bool = False) -> float:
        return self._sy(self.y2 if right and self.y2 else self.y, v)

    def open(self) -> list[str]:
        kind = self.plot_id.removeprefix("plot-")
        out = [f'<svg id="{_e(self.plot_id)}" data-plot="{_e(kind)}" class="plot" '
               f'viewBox="0 0 {self.width} {self.height}" width="{self.width}" '
               f'height="{self.height}" '
               f'role="img" aria-label="{_e(self.title)}" font-size="{FONT}">',
               f"<title>{_e(self.title)}</title>",
               f'<rect x="0" y="0" width="{self.width}" height="{self.height}" fill="#fff"/>',
               f'<text x="{_f(self.title_x)}" y="22" font-size="15" font-weight="600" '
               f'fill="#1b1f24">{_e(self.title)}</text>']
        out += self._legend()
        # grid and tick labels
        for t in self.y.ticks:
            y = self.sy(t)
            out.append(f'<line x1="{_f(self.left)}" x2="{_f(self.right)}" y1="{_f(y)}" '
                       f'y2="{_f(y)}" stroke="#e3e6ea"/>')
            out.append(f'<text x="{_f(self.left - 6)}" y="{_f(y + 4)}" text-anchor="end" '
                       f'fill="#444">{_e(self.y.label(t))}</text>')
        if self.y2:
            for t in self.y2.ticks:
                y = self.sy(t, right=True)
                out.append(f'<line x1="{_f(self.right)}" x2="{_f(self.right + 4)}" '
                           f'y1="{_f(y)}" y2="{_f(y)}" stroke="#666"/>')
                out.append(f'<text x="{_f(self.right + 7)}" y="{_f(y + 4)}" '
                           f'text-anchor="start" fill="#444">{_e(self.y2.label(t))}</text>')
        for t in self.x.ticks:
            x = self.sx(t)
            out.append(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(self.top)}" '
                       f'y2="{_f(self.bottom)}" stroke="#f0f2f4"/>')
            out.append(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(self.bottom)}" '
                       f'y2="{_f(self.bottom + 4)}" stroke="#666"/>')
            out.append(f'<text x="{_f(x)}" y="{_f(self.bottom + 17)}" text-anchor="middle" '
                       f'fill="#444">{_e(self.x.label(t))}</text>')
        # the frame and the axis titles
        out.append(f'<rect x="{_f(self.left)}" y="{_f(self.top)}" '
                   f'width="{_f(self.right - self.left)}" height="{_f(self.bottom - self.top)}" '
                   f'fill="none" stroke="#666"/>')
        mid_x, mid_y = (self.left + self.right) / 2, (self.top + self.bottom) / 2
        out.append(f'<text class="axis-title" x="{_f(mid_x)}" y="{self.height - 12}" '
                   f'text-anchor="middle" fill="#1b1f24">{_e(self.x_title)}</text>')
        if self.y_title:
            out.append(f'<text class="axis-title" x="16" y="{_f(mid_y)}" '
                       f'text-anchor="middle" transform="rotate(-90 16 {_f(mid_y)})" '
                       f'fill="#1b1f24">{_e(self.y_title)}</text>')
        if self.y2:
            x2 = self.width - 12
            out.append(f'<text class="axis-title" x="{x2}" y="{_f(mid_y)}" '
                       f'text-anchor="middle" transform="rotate(90 {x2} {_f(mid_y)})" '
                       f'fill="#1b1f24">{_e(self.y2_title)}</text>')
        return out

    def _legend(self) -> list[str]:
        out = ['<g class="legend">']
        for row, items in enumerate(self.legend_rows):
            y = 40 + 18 * row
            for x, item in items:
                out.append(_swatch(item, x, y))
                out.append(f'<text x="{_f(x + 30)}" y="{_f(y + 4)}" fill="#1b1f24">'
                           f"{_e(item.name)}</text>")
        out.append("</g>")
        return out

    def knee(self, knee: float | None) -> list[str]:
        """A dashed vertical line at the knee, labelled."""
        if knee is None or not self.x.lo <= knee <= self.x.hi:
            return []
        x = self.sx(knee)
        label = f"knee {_num(knee)}"
        # above the frame, clear of the data: centred on the line, or ending at the frame
        half = _text_width(label) / 2
        tx, anchor = ((self.right, "end") if x + half > self.right else
                      (self.left, "start") if x - half < self.left else (x, "middle"))
        return [f'<g class="knee"><line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(self.top)}" '
                f'y2="{_f(self.bottom)}" stroke="{COLORS["purple"]}" stroke-width="1.5" '
                f'stroke-dasharray="6 4"/>'
                f'<text x="{_f(tx)}" y="{_f(self.top - 5)}" text-anchor="{anchor}" '
                f'fill="{COLORS["purple"]}" font-weight="600">{_e(label)}</text></g>']

    def no_data(self) -> list[str]:
        return [f'<text x="{_f((self.left + self.right) / 2)}" '
                f'y="{_f((self.top + self.bottom) / 2)}" text-anchor="middle" '
                f'fill="#888" font-size="14">no data</text>']


def _swatch(item: Legend, x: float, y: float) -> str:
    dash = f' stroke-dasharray="{item.dash}"' if item.dash else ""
    if item.marker == "vline":
        return (f'<line x1="{_f(x + 12)}" x2="{_f(x + 12)}" y1="{_f(y - 7)}" y2="{_f(y + 7)}" '
                f'stroke="{item.color}" stroke-width="1.5"{dash}/>')
    line = (f'<line x1="{_f(x)}" x2="{_f(x + 24)}" y1="{_f(y)}" y2="{_f(y)}" '
            f'stroke="{item.color}" stroke-width="{item.width:g}" '
            f'stroke-opacity="{item.opacity:g}"{dash}/>')
    if item.marker == "line":
        return line
    if item.marker == "hollow":
        return (f'<circle cx="{_f(x + 12)}" cy="{_f(y)}" r="4" fill="#fff" '
                f'stroke="{item.color}" stroke-width="1.5"/>')
    if item.marker == "square":
        return line + _marker("square", x + 12, y, item.color)
    if item.marker == "ring":
        return (f'<circle cx="{_f(x + 12)}" cy="{_f(y)}" r="6.5" fill="none" '
                f'stroke="{item.color}" stroke-width="2"/>')
    return line + f'<circle cx="{_f(x + 12)}" cy="{_f(y)}" r="3.5" fill="{item.color}"/>'


def _marker(kind: str, cx: float, cy: float, color: str, inner: str = "",
            cls: str = "point") -> str:
    if kind == "square":
        return (f'<rect class="{cls}" x="{_f(cx - 4.5)}" y="{_f(cy - 4.5)}" width="9" '
                f'height="9" fill="none" stroke="{color}" stroke-width="1.8">{inner}</rect>')
    return (f'<circle class="{cls}" cx="{_f(cx)}" cy="{_f(cy)}" r="3.5" fill="{color}">'
            f"{inner}</circle>")


def _path(frame: Frame, points: Sequence[tuple[float, float | None]], right: bool) -> str:
    """An SVG path through the points, broken where y is None."""
    parts, pen_down = [], False
    for x, y in points:
        if y is None or not math.isfinite(y):
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{_f(frame.sx(x))} {_f(frame.sy(y, right))}")
        pen_down = True
    return " ".join(parts)


def line_chart(plot_id: str, title: str, series: Sequence[Series], x_title: str,
               y: Axis, y_title: str, *, knee: float | None = None, y2: Axis | None = None,
               y2_title: str = "", x_label: Callable[[float], str] = _num) -> str:
    """Lines (with markers) of each series against load; the knee marked."""
    xs = [x for s in series for x, _ in s.points]
    x = nice_axis(xs, zero=False, margin=0.06, integer=all(v == int(v) for v in xs))
    legend = [Legend(s.name, s.color, s.dash, s.marker, s.width, s.opacity) for s in series]
    if knee is not None:
        legend.append(Legend("knee", COLORS["purple"], "6 4", "vline"))
    frame = Frame(plot_id, title, x, y, x_title, y_title, legend, y2, y2_title)
    out = frame.open()
    out += frame.knee(knee)
    drawn = False
    for s in series:
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        d = _path(frame, s.points, s.right)
        if d:
            out.append(f'<path d="{d}" fill="none" stroke="{s.color}" '
                       f'stroke-width="{s.width:g}" stroke-opacity="{s.opacity:g}"{dash} '
                       f'stroke-linejoin="round" stroke-linecap="round"/>')
        for px, py in s.points:
            if py is None or not math.isfinite(py):
                continue
            drawn = True
            tip = f"<title>{_e(s.name)} at {_e(x_label(px))}: {_e(_num_short(py))}" \
                  f"{_e(s.unit)}</title>"
            out.append(_marker(s.marker, frame.sx(px), frame.sy(py, s.right), s.color, tip))
    if not drawn:
        out += frame.no_data()
    out.append("</svg>")
    return "\n".join(out)


def _num_short(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """The indices of the points no other point beats on both counts (more throughput,
    x, and less latency, y), in order of x."""
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], points[i][1]))
    front, best = [], math.inf
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return sorted(front, key=lambda i: points[i][0])


def _time_scale(values: Iterable[float | None]) -> tuple[float, str]:
    """Milliseconds, unless the values reach 10 s."""
    top = max((v for v in values if v is not None and math.isfinite(v)), default=0.0)
    return (1.0, "s") if top >= 10 else (1000.0, "ms")


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None or not math.isfinite(value) else value * factor


def pareto_chart(run: BenchRun) -> str:
    steps = _by_load(run)
    factor, unit = _time_scale(s.ttft.p90 for s in steps)
    valid = [(s, s.output_tokens_per_second, s.ttft.p90 * factor) for s in steps
             if s.ttft.p90 is not None and math.isfinite(s.ttft.p90)
             and math.isfinite(s.output_tokens_per_second)]
    front = set(pareto_front([(x, y) for _, x, y in valid]))
    x = nice_axis([v[1] for v in valid], zero=False, margin=0.1)
    y = nice_axis([v[2] for v in valid], zero=True, margin=0.12)
    mode = steps[0].mode if steps else "concurrency"
    legend = [Legend("sweep order", COLORS["grey"], "3 3", "line"),
              Legend("Pareto front", COLORS["green"])]
    if len(front) < len(valid):
        legend.append(Legend("dominated step", COLORS["grey"], marker="hollow"))
    if run.knee is not None and any(s.load == run.knee for s, _, _ in valid):
        legend.append(Legend("knee", COLORS["purple"], marker="ring"))
    label_what = "request rate, req/s" if mode == "rate" else "concurrency"
    frame = Frame("plot-pareto", f"Latency vs throughput (labels: {label_what})", x, y,
                  "output throughput (tokens/s)", f"TTFT p90 ({unit})", legend)
    out = frame.open()
    if not valid:
        out += frame.no_data()
    else:
        sweep = " ".join(f"{'L' if i else 'M'}{_f(frame.sx(px))} {_f(frame.sy(py))}"
                         for i, (_, px, py) in enumerate(valid))
        out.append(f'<path d="{sweep}" fill="none" stroke="{COLORS["grey"]}" '
                   f'stroke-width="1.2" stroke-dasharray="3 3"/>')
        ordered = sorted(front, key=lambda i: valid[i][1])
        if len(ordered) > 1:
            d = " ".join(f"{'L' if k else 'M'}{_f(frame.sx(valid[i][1]))} "
                         f"{_f(frame.sy(valid[i][2]))}" for k, i in enumerate(ordered))
            out.append(f'<path class="pareto-front" d="{d}" fill="none" '
                       f'stroke="{COLORS["green"]}" stroke-width="2.5" '
                       f'stroke-linejoin="round"/>')
        for i, (s, px, py) in enumerate(valid):
            cx, cy = frame.sx(px), frame.sy(py)
            tip = (f"{_load(s.mode, s.load)}: {_rate(px)} tokens/s, TTFT p90 "
                   f"{_time(s.ttft.p90)}")
            if i in front:
                out.append(f'<circle class="front" cx="{_f(cx)}" cy="{_f(cy)}" r="4.5" '
                           f'fill="{COLORS["green"]}"><title>{_e(tip)}</title></circle>')
            else:
                out.append(f'<circle cx="{_f(cx)}" cy="{_f(cy)}" r="4.5" fill="#fff" '
                           f'stroke="{COLORS["grey"]}" stroke-width="1.5">'
                           f"<title>{_e(tip)}</title></circle>")
            if run.knee is not None and s.load == run.knee:
                out.append(f'<circle cx="{_f(cx)}" cy="{_f(cy)}" r="8" fill="none" '
                           f'stroke="{COLORS["purple"]}" stroke-width="2"/>')
            label = _num(s.load)
            # above the point (clear of the knee's ring), or below it near the top
            gap = 13 if run.knee is not None and s.load == run.knee else 9
            ly = cy - gap if cy - gap > frame.top + 12 else cy + gap + 10
            out.append(f'<text class="point-label" x="{_f(cx)}" y="{_f(ly)}" '
                       f'text-anchor="middle" fill="#1b1f24" font-weight="600">'
                       f"{_e(label)}</text>")
    out.append("</svg>")
    return "\n".join(out)


def _load_title(run: BenchRun) -> str:
    mode = run.steps[0].mode if run.steps else str(run.settings.get("mode", "concurrency"))
    return "request rate (requests/s)" if mode == "rate" else "concurrency (requests in flight)"


def _latency_chart(run: BenchRun, metric: str, plot_id: str, title: str) -> str:
    steps = _by_load(run)
    stats: list[Stats] = [getattr(s, metric) for s in steps]
    factor, unit = _time_scale(getattr(st, p) for st in stats for p in ("p50", "p90", "p99"))
    series = [Series(p, PERCENTILE_COLORS[p],
                     [(s.load, _scaled(getattr(st, p), factor)) for s, st in zip(steps, stats,
                                                                                strict=True)],
                     unit=f" {unit}")
              for p in ("p50", "p90", "p99")]
    y = nice_axis([v for se in series for _, v in se.points], zero=True, margin=0.08)
    return line_chart(plot_id, title, series, _load_title(run), y,
                      f"{metric.upper()} ({unit})", knee=run.knee)


def plots(run: BenchRun) -> list[str]:
    """The five plots of a run, as SVG elements."""
    steps = _by_load(run)
    tokens = Series("output tokens/s (left axis)", COLORS["blue"],
                    [(s.load, s.output_tokens_per_second) for s in steps], unit=" tokens/s",
                    width=5, opacity=0.45)
    rps = Series("requests/s (right axis)", COLORS["orange"],
                 [(s.load, s.requests_per_second) for s in steps], dash="7 4", right=True,
                 unit=" req/s", marker="square")
    throughput = line_chart(
        "plot-throughput", "Throughput vs load", [tokens, rps], _load_title(run),
        nice_axis([v for _, v in tokens.points], margin=0.08), "output tokens/s",
        knee=run.knee, y2=nice_axis([v for _, v in rps.points], margin=0.08),
        y2_title="requests/s")
    percent = fixed_axis(0, 105, [0, 20, 40, 60, 80, 100])
    errors = line_chart(
        "plot-errors", "Errors and goodput vs load",
        [Series("error ratio", COLORS["red"],
                [(s.load, _scaled(s.error_ratio, 100)) for s in steps], unit=" %"),
         Series("goodput (met the objectives)", COLORS["green"],
                [(s.load, _scaled(s.goodput, 100)) for s in steps], dash="7 4", unit=" %")],
        _load_title(run), percent, "share of requests (%)", knee=run.knee)
    return [throughput,
            _latency_chart(run, "ttft", "plot-ttft", "Time to first token vs load"),
            _latency_chart(run, "itl", "plot-itl", "Inter-token latency vs load"),
            pareto_chart(run), errors]


# --- HTML ---------------------------------------------------------------------------------------

CSS = """
:root{color-scheme:light}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;
 margin:24px 32px;color:#1b1f24;background:#fff;font-size:14px;line-height:1.4}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #e3e6ea;padding-bottom:4px}
.sub{color:#57606a;margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(250px,1fr));gap:12px}
.card{border:1px solid #d8dee4;border-radius:6px;padding:10px 14px;background:#f8fafc;
 font-size:13px;min-width:0}
.card h3{font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:#57606a;
 margin:0 0 6px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}
dt{color:#57606a}dd{margin:0;overflow-wrap:break-word;min-width:0}
.warn{border:1px solid #e0a800;background:#fff8e1;border-radius:6px;padding:8px 12px;
 margin:14px 0}
.verdict{display:inline-block;font-weight:700;border-radius:6px;padding:4px 12px;
 font-size:16px}
.pass{background:#e6f4ea;color:#1e6b30;border:1px solid #9fd3ad}
.fail{background:#fdecea;color:#a1221b;border:1px solid #f1aaa5}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
th,td{padding:4px 8px;border-bottom:1px solid #e3e6ea;text-align:right;white-space:nowrap}
th{background:#f3f5f7;font-weight:600;vertical-align:bottom}
th:first-child,td:first-child{text-align:left}
tr.knee td{background:#f3eefa}
tr.saturated td:first-child{color:#a15c00}
.scroll{overflow-x:auto}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:18px}
figure{margin:0;border:1px solid #d8dee4;border-radius:6px;padding:6px;background:#fff}
figure.forest{max-width:920px}
svg.plot{width:100%;height:auto;display:block;
 font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif}
.note{color:#57606a;font-size:12px}
footer{margin-top:28px;color:#57606a;font-size:12px}
"""

# Nothing may load or run: should anything from the run slip through unescaped, the browser
# refuses it.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _page(title: str, body: Sequence[str]) -> str:
    return "\n".join([
        "<!doctype html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
        *body, "</body>", "</html>", ""])


def _dl(title: str, facts: Sequence[tuple[str, str]]) -> str:
    """A card of facts; a URL may break after its slashes rather than in a host name."""
    rows = "".join(
        f"<dt>{_e(k)}</dt><dd>{_e(v).replace('/', '/<wbr>') if k == 'url' else _e(v)}</dd>"
        for k, v in facts)
    return f'<div class="card"><h3>{_e(title)}</h3><dl>{rows or "<dd>unknown</dd>"}</dl></div>'


def _table(table_id: str, head: Sequence[str], rows: Sequence[str]) -> str:
    if not rows:
        rows = [f'<tr><td colspan="{len(head)}">no steps were run</td></tr>']
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    return (f'<div class="scroll"><table id="{table_id}"><thead><tr>{header}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _row_start(run: BenchRun, s: StepSummary) -> str:
    """A step's <tr> and its first cell: the load, the knee and a saturated client marked."""
    knee = run.knee is not None and s.load == run.knee
    classes = " ".join(c for c, on in (("knee", knee), ("saturated", s.client_saturated)) if on)
    label = _load(s.mode, s.load) + (" · knee" if knee else "") + (
        " ⚠" if s.client_saturated else "")
    title = (' title="the client was saturated: its CPU may have set the pace"'
             if s.client_saturated else "")
    cls = f' class="{classes}"' if classes else ""
    return f"<tr{cls}><td{title}>{_e(label)}</td>"


def _summary_table(run: BenchRun) -> str:
    """What the clients saw at each step."""
    head = ["load", "requests", "ok", "req/s", "output tok/s", "TTFT p50", "TTFT p90",
            "TTFT p99", "ITL p50", "ITL p99", "TPOT p50", "E2E p50", "errors", "goodput",
            "accuracy"]
    rows = []
    for s in _by_load(run):
        error_title = f' title="{_e(_errors_text(s.errors))}"' if s.errors else ""
        cells = [
            f"<td>{s.requests:,}</td>", f"<td>{s.succeeded:,}</td>",
            f"<td>{_rate(s.requests_per_second)}</td>",
            f"<td>{_rate(s.output_tokens_per_second)}</td>",
            *(f"<td>{_time(v)}</td>" for v in (s.ttft.p50, s.ttft.p90, s.ttft.p99, s.itl.p50,
                                               s.itl.p99, s.tpot.p50, s.e2e.p50)),
            f"<td{error_title}>{_pct(s.error_ratio)}</td>", f"<td>{_pct(s.goodput)}</td>",
            f"<td>{_pct(s.accuracy)}</td>"]
        rows.append(_row_start(run, s) + "".join(cells) + "</tr>")
    return _table("summary", head, rows)


def _resources_table(run: BenchRun) -> str:
    """The client's own cost, and the model server's gauges and token counts, per step."""
    head = ["load", "in flight", "client CPU", "client CPU/event", "server queue (max)",
            "server running (max)", "KV cache (max)", "tokens in / out per request"]
    rows = []
    for s in _by_load(run):
        sv = s.server
        cpu = (f"{s.client_cpu_per_event_us:.1f} µs" if s.client_cpu_per_event_us is not None
               else NONE)
        tokens = (f"{_plain(s.prompt_tokens_mean, 0)} / {_plain(s.output_tokens_mean, 0)}"
                  if s.prompt_tokens_mean is not None or s.output_tokens_mean is not None
                  else NONE)
        cells = [_plain(s.achieved_concurrency), f"{s.client_cpu_seconds:.2f} s", cpu,
                 f"{_plain(sv.queue_mean)} ({_plain(sv.queue_max, 0)})" if sv else NONE,
                 f"{_plain(sv.running_mean)} ({_plain(sv.running_max, 0)})" if sv else NONE,
                 f"{_pct(sv.kv_cache_mean)} ({_pct(sv.kv_cache_max)})" if sv else NONE,
                 tokens]
        rows.append(_row_start(run, s) + "".join(f"<td>{_e(c)}</td>" for c in cells)
                    + "</tr>")
    return _table("resources", head, rows)


def _errors_list(run: BenchRun) -> str:
    items = [f"<li>{_e(_load(s.mode, s.load))}: {_e(_errors_text(s.errors))}</li>"
             for s in _by_load(run) if s.errors]
    return f'<p class="note">Errors by reason:</p><ul class="note">{"".join(items)}</ul>' \
        if items else ""


def to_html(run: BenchRun) -> str:
    """One self-contained HTML file: who was measured, the steps in a table, and five plots
    (throughput, TTFT, ITL, latency against throughput, errors and goodput)."""
    ep = run.endpoint
    name = str(ep.get("name") or "endpoint")
    endpoint_facts = [("name", name)]
    for key, label in (("provider", "provider"), ("model", "requested model")):
        if ep.get(key):
            endpoint_facts.append((label, str(ep[key])))
    if ep.get("url"):
        endpoint_facts.append(("url", _safe_url(ep["url"])))
    sweep = [(str(k), _setting(v)) for k, v in run.settings.items()]
    results = [("objectives", _objectives(run.objectives)), ("knee", _knee_text(run)),
               ("started", run.started)]
    if run.llmmon_version:
        results.append(("llmmon", run.llmmon_version))
    body = [f"<h1>llmmon bench: {_e(name)}</h1>",
            f'<p class="sub">{_e(_model_line(run.model))} · started {_e(run.started)}</p>',
            '<div class="cards" id="identity">',
            _dl("Endpoint", endpoint_facts), _dl("Model", _model_facts(run.model)),
            _dl("Sweep", sweep), _dl("Result", results), "</div>"]
    if warning := _saturation_text(run):
        body.append(f'<p class="warn" id="saturated"><strong>⚠ Client saturated:</strong> '
                    f"{_e(warning)}.</p>")
    body += ["<h2>Steps</h2>", _summary_table(run), _errors_list(run),
             '<p class="note">Times are percentiles over the step\'s requests; goodput is the '
             "share of requests that succeeded within the objectives.</p>",
             "<h2>Client and server</h2>", _resources_table(run),
             '<p class="note">In flight: requests open at once, on average. Client CPU: '
             "llmmon's own CPU time, in all and per streamed chunk. Server: the model "
             "server's queue, running batch and KV-cache use, sampled during the step, and the "
             "tokens it counted per request.</p>",
             "<h2>Plots</h2>", '<div class="plots">']
    body += [f"<figure>{svg}</figure>" for svg in plots(run)]
    body += ["</div>", f"<footer>llmmon {_e(run.llmmon_version)} · schema {_e(run.schema)} · "
             "a self-contained file: it loads nothing from anywhere.</footer>"]
    return _page(f"llmmon bench: {name}", body)


# --- compare ------------------------------------------------------------------------------------

_TIME_METRICS = ("ttft", "itl", "tpot", "e2e")
_SHARE_METRICS = ("error_ratio", "goodput", "accuracy", "kv_cache")


def _metric_kind(metric: str) -> str:
    if metric.split("_", 1)[0] in _TIME_METRICS:
        return "time"
    if any(metric.startswith(m) for m in _SHARE_METRICS):
        return "share"
    return "plain"


def _metric_value(metric: str, value: Any, signed: bool = False) -> str:
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return NONE
    sign = "+" if signed and value > 0 else ""
    kind = _metric_kind(metric)
    if kind == "time":
        return sign + _time(value)
    if kind == "share":
        return f"{sign}{value * 100:.1f} {'pt' if signed else '%'}"
    return sign + (_rate(value) if abs(value) >= 1 else f"{value:.3g}")


def _relative(value: Any) -> str:
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return NONE
    return f"{value * 100:+.1f} %"


def _ci(metric: dict[str, Any], relative: bool) -> str:
    if relative:
        low, high = metric.get("low_relative"), metric.get("high_relative")
        return NONE if low is None or high is None else f"[{_relative(low)}, {_relative(high)}]"
    name = str(metric.get("metric", ""))
    return (f"[{_metric_value(name, metric.get('low'), True)}, "
            f"{_metric_value(name, metric.get('high'), True)}]")


def _names(result: dict[str, Any]) -> tuple[str, str]:
    names = [str(n) for n in result.get("endpoints") or []] + ["A", "B"]
    return names[0], names[1]


def _models(result: dict[str, Any]) -> list[tuple[str, ModelInfo]]:
    names = [str(n) for n in result.get("endpoints") or []]
    out = []
    for i, data in enumerate(result.get("models") or []):
        known = {k: v for k, v in (data or {}).items() if k in ModelInfo.__dataclass_fields__}
        out.append((names[i] if i < len(names) else f"#{i + 1}", ModelInfo(**known)))
    return out


def _ci_level(result: dict[str, Any]) -> str:
    level = result.get("confidence")
    return f"{level * 100:g} % CI" if isinstance(level, int | float) else "CI"


def _accuracy_text(result: dict[str, Any]) -> str | None:
    acc = result.get("accuracy")
    if not acc:
        return None
    a, b = _names(result)
    p = acc.get("p_value")
    return (f"answer checks passed: {a} {_pct(acc.get('rate_a'))}, {b} "
            f"{_pct(acc.get('rate_b'))}, difference {acc.get('delta_points', 0):+.1f} pt"
            + (f" (p = {p:.3g})" if isinstance(p, int | float) else ""))


def compare_markdown(result: dict[str, Any]) -> str:
    """A comparison as Markdown: the verdict, both models, each metric's delta with its
    confidence interval, the answer checks and the thresholds."""
    a, b = _names(result)
    verdict = str(result.get("verdict", "")).upper() or "NONE"
    lines = [f"# llmmon compare: {_md(a)} vs {_md(b)}", "", f"**Verdict: {_md(verdict)}**", ""]
    models = _models(result)
    if models:
        lines += _md_table(["endpoint", "served model", "parameters", "quantization",
                            "context", "size"],
                           ([_md(n), _md(m.served_model or NONE),
                             _params(m.parameters) if m.parameters else NONE,
                             _md(m.quantization or NONE),
                             f"{m.context_length:,}" if m.context_length else NONE,
                             _bytes(m.size_bytes) if m.size_bytes else NONE]
                            for n, m in models), [False, False, True, False, True, True])
        lines.append("")
    ci = _ci_level(result)
    metrics = result.get("metrics") or []
    if metrics:
        lines += _md_table(
            ["metric", _md(a), _md(b), "Δ", "Δ %", f"{ci}", f"{ci} %", "significant"],
            ([_md(m.get("metric", "")), _metric_value(m.get("metric", ""), m.get("a")),
              _metric_value(m.get("metric", ""), m.get("b")),
              _metric_value(m.get("metric", ""), m.get("delta"), True),
              _relative(m.get("relative")), _ci(m, False), _ci(m, True),
              "**yes**" if m.get("significant") else "no"] for m in metrics),
            [False] + [True] * 6 + [False])
        lines += ["", f"Δ is {_md(b)} minus {_md(a)}; significant: the {ci} excludes 0.", ""]
    else:
        lines += ["No metrics were compared.", ""]
    if text := _accuracy_text(result):
        lines += [f"- {_md(text)}", ""]
    thresholds = result.get("thresholds") or []
    if thresholds:
        lines += ["## Thresholds", ""]
        lines += [f"- `{str(t.get('spec', '')).replace('`', '')}`: "
                  + ("**breached**" if t.get("breached") else "met") for t in thresholds]
        lines.append("")
    return "\n".join(lines)


def forest_plot(result: dict[str, Any]) -> str:
    """Each metric's relative delta (B against A) with its confidence interval, and 0."""
    metrics = list(result.get("metrics") or [])
    row_h = 30
    values = [m.get(k) for m in metrics for k in ("relative", "low_relative", "high_relative")]
    x = nice_axis([v * 100 if isinstance(v, int | float) else None for v in values],
                  zero=True, margin=0.08, suffix=" %")
    if x.lo >= 0:  # keep 0 off the frame's edge
        x = nice_axis([v * 100 if isinstance(v, int | float) else None for v in values]
                      + [-(x.hi - x.lo) * 0.05], zero=True, margin=0.08, suffix=" %")
    ci = _ci_level(result)
    a, b = _names(result)
    legend = [Legend(f"significant ({ci} excludes 0)", COLORS["blue"]),
              Legend("not significant", COLORS["grey"], marker="hollow"),
              Legend("no change", "#1b1f24", marker="vline")]
    height = 34 + 18 + 16 + max(1, len(metrics)) * row_h + 50
    label_w = max([_text_width(str(m.get("metric", ""))) for m in metrics] + [60.0])
    width = 900
    frame = Frame("plot-forest", f"Relative change, {b} against {a}", x,
                  fixed_axis(0, max(1, len(metrics)), []), f"change of {b} against {a} (%)",
                  "", legend, height=height, left=16 + label_w + 10, right=width - 230,
                  width=width, title_x=16)
    out = frame.open()
    zero = frame.sx(0)
    out.append(f'<line class="zero" x1="{_f(zero)}" x2="{_f(zero)}" y1="{_f(frame.top)}" '
               f'y2="{_f(frame.bottom)}" stroke="#1b1f24" stroke-width="1.5"/>')
    out.append(f'<text x="{_f(frame.right + 8)}" y="{_f(frame.top - 4)}" fill="#57606a">'
               f"Δ % [{_e(ci)}]</text>")
    if not metrics:
        out += frame.no_data()
    for i, m in enumerate(metrics):
        y = frame.top + (i + 0.5) * (frame.bottom - frame.top) / len(metrics)
        name = str(m.get("metric", ""))
        out.append(f'<text x="{_f(frame.left - 8)}" y="{_f(y + 4)}" text-anchor="end" '
                   f'fill="#1b1f24">{_e(name)}</text>')
        rel, low, high = m.get("relative"), m.get("low_relative"), m.get("high_relative")
        significant = bool(m.get("significant"))
        color = COLORS["blue"] if significant else COLORS["grey"]
        text = (f"{_relative(rel)} {_ci(m, True)}" if rel is not None
                else "n/a (no relative change)")
        out.append(f'<text x="{_f(frame.right + 8)}" y="{_f(y + 4)}" fill="#1b1f24">'
                   f"{_e(text)}</text>")
        if isinstance(low, int | float) and isinstance(high, int | float):
            x1, x2 = frame.sx(low * 100), frame.sx(high * 100)
            out.append(f'<line class="ci" x1="{_f(x1)}" x2="{_f(x2)}" y1="{_f(y)}" '
                       f'y2="{_f(y)}" stroke="{color}" stroke-width="2"/>')
            for cap in (x1, x2):
                out.append(f'<line x1="{_f(cap)}" x2="{_f(cap)}" y1="{_f(y - 6)}" '
                           f'y2="{_f(y + 6)}" stroke="{color}" stroke-width="2"/>')
        if isinstance(rel, int | float):
            fill = color if significant else "#fff"
            out.append(f'<circle class="estimate" cx="{_f(frame.sx(rel * 100))}" '
                       f'cy="{_f(y)}" r="5" fill="{fill}" stroke="{color}" stroke-width="2">'
                       f"<title>{_e(name)}: {_e(text)}</title></circle>")
    out.append("</svg>")
    return "\n".join(out)


def compare_html(result: dict[str, Any]) -> str:
    """A comparison as one self-contained HTML file, with a forest plot of the deltas."""
    a, b = _names(result)
    verdict = str(result.get("verdict", "")).lower()
    body = [f"<h1>llmmon compare: {_e(a)} vs {_e(b)}</h1>",
            f'<p><span class="verdict {verdict if verdict in ("pass", "fail") else ""}" '
            f'id="verdict">{_e(verdict.upper() or "NO VERDICT")}</span></p>']
    models = _models(result)
    if models:
        body.append('<div class="cards" id="identity">')
        body += [_dl(name, _model_facts(model)) for name, model in models]
        body.append("</div>")
    ci = _ci_level(result)
    metrics = result.get("metrics") or []
    body.append("<h2>Metrics</h2>")
    head = ["metric", a, b, "Δ", "Δ %", ci, f"{ci} (%)", "significant"]
    rows = []
    for m in metrics:
        name = str(m.get("metric", ""))
        cells = [name, _metric_value(name, m.get("a")), _metric_value(name, m.get("b")),
                 _metric_value(name, m.get("delta"), True), _relative(m.get("relative")),
                 _ci(m, False), _ci(m, True), "yes" if m.get("significant") else "no"]
        rows.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    if not rows:
        rows.append(f'<tr><td colspan="{len(head)}">no metrics were compared</td></tr>')
    body.append('<div class="scroll"><table id="metrics"><thead><tr>'
                + "".join(f"<th>{_e(h)}</th>" for h in head)
                + f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
    body.append(f'<p class="note">Δ is {_e(b)} minus {_e(a)}; significant: the {_e(ci)} '
                "excludes 0.</p>")
    if text := _accuracy_text(result):
        body.append(f'<p id="accuracy">{_e(text[0].upper() + text[1:])}.</p>')
    thresholds = result.get("thresholds") or []
    if thresholds:
        body.append("<h2>Thresholds</h2><ul>" + "".join(
            f"<li><code>{_e(t.get('spec', ''))}</code>: "
            + ("<strong>breached</strong>" if t.get("breached") else "met") + "</li>"
            for t in thresholds) + "</ul>")
    body += ["<h2>Deltas</h2>", f'<figure class="forest">{forest_plot(result)}</figure>',
             "<footer>llmmon compare · a self-contained file: it loads nothing from anywhere."
             "</footer>"]
    return _page(f"llmmon compare: {a} vs {b}", body)


_RENDERERS: dict[str, Callable[[BenchRun], str]] = {
    "json": to_json, "csv": to_csv, "md": to_markdown, "html": to_html}
