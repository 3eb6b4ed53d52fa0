"""The reports of a bench run and of a comparison: JSON (the full record), CSV (a row per
step), Markdown, and one self-contained HTML file with its plots drawn here as inline SVG.

The HTML loads nothing: no scripts, no fonts, no style sheets, no images from anywhere (its
Content-Security-Policy says so too, should a string from the run ever slip through), so it
opens offline and can be mailed or attached to a CI run as one file. Every string that comes
from the run (endpoint, URL, model names, error reasons, settings) is escaped.

Here: the files and JSON; tables.py the CSV and Markdown; text.py the formatting they all
share; svg.py the drawing primitives; plots.py the plots of a run; page.py its HTML page;
compare.py the reports of a comparison."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from llmmon.bench.model import BenchRun
from llmmon.bench.report.compare import compare_html, compare_markdown, forest_plot
from llmmon.bench.report.page import CSP, CSS, to_html
from llmmon.bench.report.plots import line_chart, pareto_chart, pareto_front, plots
from llmmon.bench.report.svg import (
    COLORS,
    FONT,
    PERCENTILE_COLORS,
    Axis,
    Frame,
    H,
    Legend,
    Series,
    W,
    fixed_axis,
    nice_axis,
)
from llmmon.bench.report.tables import CSV_COLUMNS, to_csv, to_markdown
from llmmon.bench.report.text import NONE

__all__ = [
    "COLORS", "CSP", "CSS", "CSV_COLUMNS", "FONT", "FORMATS", "NONE", "PERCENTILE_COLORS",
    "Axis", "Frame", "H", "Legend", "Series", "W", "compare_html", "compare_markdown",
    "fixed_axis", "forest_plot", "line_chart", "nice_axis", "pareto_chart", "pareto_front",
    "plots", "to_csv", "to_html", "to_json", "to_markdown", "write_reports",
]

FORMATS = ("json", "csv", "md", "html")


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


_RENDERERS: dict[str, Callable[[BenchRun], str]] = {
    "json": to_json, "csv": to_csv, "md": to_markdown, "html": to_html}
