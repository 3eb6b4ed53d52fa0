"""The reports of a comparison: Markdown, and one self-contained HTML file with a forest plot
of the deltas."""

from __future__ import annotations

import math
from typing import Any

from llmmon.bench.model import ModelInfo
from llmmon.bench.report.page import _dl, _page
from llmmon.bench.report.svg import (
    COLORS,
    Frame,
    Legend,
    _e,
    _f,
    _text_width,
    fixed_axis,
    nice_axis,
)
from llmmon.bench.report.tables import _md, _md_table
from llmmon.bench.report.text import NONE, _bytes, _model_facts, _params, _pct, _rate, _time

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
