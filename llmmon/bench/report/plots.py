"""The five plots of a run (throughput, TTFT, ITL, latency against throughput, errors and
goodput), drawn as inline SVG."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

from llmmon.bench.model import BenchRun, Stats
from llmmon.bench.report.svg import (
    COLORS,
    PERCENTILE_COLORS,
    Axis,
    Frame,
    Legend,
    Series,
    _e,
    _f,
    _marker,
    _path,
    fixed_axis,
    nice_axis,
)
from llmmon.bench.report.text import _by_load, _load, _num, _rate, _time


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
