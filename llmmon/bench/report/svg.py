"""The drawing primitives of the SVG plots: escaping, nice axes, legends, series, and the
frame that lays out a plot and scales data to SVG coordinates."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from llmmon.bench.report.text import _num

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
