"""How the reports write numbers, loads, times, shares, the model and the run's settings: the
formatting shared by the tables, the plots, the HTML page and the comparison."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from llmmon.bench.model import BenchRun, ModelInfo, StepSummary

NONE = "—"  # what a table shows where nothing was measured


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
