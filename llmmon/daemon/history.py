"""The last probes of each endpoint, as blackbox_exporter's ``?debug=true`` shows one: what was
asked, what came back, how long it took and why it failed. Served at ``/probes?endpoint=NAME``
(text, or JSON with ``&format=json``), behind the same auth as /metrics."""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from llmmon.config import EndpointConfig, Prompt
from llmmon.probe.result import ProbeResult

MAX_ANSWER = 500  # characters of an answer kept per probe: memory stays bounded


class History:
    """The last ``size`` probes of one endpoint, each a small summary."""

    def __init__(self, size: int) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=max(size, 0))

    def resize(self, size: int) -> None:
        if size != self.entries.maxlen:
            self.entries = deque(self.entries, maxlen=max(size, 0))

    def add(self, endpoint: EndpointConfig, prompt: Prompt, result: ProbeResult) -> None:
        if self.entries.maxlen:
            self.entries.append(entry(endpoint, prompt, result))


def entry(endpoint: EndpointConfig, prompt: Prompt, result: ProbeResult) -> dict[str, Any]:
    """One probe, summarised: request, outcome, timings, tokens, answer (truncated), check."""
    itl = sorted(result.itl)
    answer = result.text if len(result.text) <= MAX_ANSWER else result.text[:MAX_ANSWER] + "…"
    return {
        "time": datetime.fromtimestamp(result.finished_unix, UTC).isoformat(timespec="seconds"),
        "request": {"url": endpoint.url.split("?", 1)[0], "provider": endpoint.provider_name,
                    "model": endpoint.model, "prompt": prompt.name, "stream": endpoint.stream,
                    "max_tokens": prompt.max_tokens or endpoint.max_tokens},
        "outcome": result.error or "success",
        "status": result.status,
        "detail": result.detail,
        "hint": result.hint,
        "served_model": result.served_model,
        "seconds": {"ttft": result.ttft, "e2e": result.e2e,
                    "itl_p50": _median(itl) if itl else None,
                    "itl_max": itl[-1] if itl else None, **result.phases},
        "tokens": {"prompt": result.prompt_tokens, "output": result.output_tokens,
                   "cached": result.cached_tokens, "from_usage": result.tokens_from_usage,
                   "chunks": result.content_chunks, "per_chunk": result.tokens_per_chunk},
        "answer": answer,
        "check": {True: "pass", False: "fail", None: None}[result.check_passed],
    }


def render(name: str, entries: list[dict[str, Any]], as_json: bool,
           evals: Mapping[str, Any] | None = None) -> str:
    if as_json:
        return json.dumps({"endpoint": name, "probes": entries, "evals": evals or {}},
                          indent=2) + "\n"
    lines = [f"Last {len(entries)} probes of endpoint {name}, newest last.", ""]
    for item in entries:
        lines.append(f"== {item['time']}  {item['outcome']}  (HTTP {item['status'] or '-'})")
        lines += _fields(item)
        lines.append("")
    for suite, run in (evals or {}).items():
        lines += _eval_lines(suite, run)
    return "\n".join(lines)


def _eval_lines(suite: str, run: Mapping[str, Any]) -> list[str]:
    """The last run of a suite: its scores, then one line per item."""
    when = datetime.fromtimestamp(run["finished_unix"], UTC).isoformat(timespec="seconds")
    scores = " ".join(f"{k}={_short(v)}" for k, v in run["scores"].items())
    lines = [f"== eval {suite}  {when}  {run['outcome']}  {scores}".rstrip()]
    for item in run["items"]:
        value = "-" if item["value"] is None else _short(item["value"])
        result = "error" if item["error"] else {True: "pass", False: "fail", None: "scored"}[
            item["passed"]]
        why = f"  {item['error']}: {item['detail']}" if item["error"] else ""
        lines.append(f"  [{item['index']}] {item['scorer']} {value} {result}{why}  "
                     f"answer: {json.dumps(item['answer'])}")
    return [*lines, ""]


def _fields(item: Mapping[str, Any]) -> list[str]:
    out = []
    for key in ("request", "detail", "hint", "served_model", "seconds", "tokens", "check"):
        value = item[key]
        if value is None:
            continue
        if isinstance(value, dict):
            value = " ".join(f"{k}={_short(v)}" for k, v in value.items() if v is not None)
        out.append(f"  {key}: {value}")
    out.append(f"  answer: {json.dumps(item['answer'])}")
    return out


def _short(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def log_change(log: logging.Logger, name: str, previous: ProbeResult | None,
               result: ProbeResult) -> None:
    """Log an endpoint's outcome when it changes, not at every probe: WARNING with the detail
    and hint when it fails anew (or for another reason), INFO when it recovers."""
    before = None if previous is None else previous.error or "success"
    now = result.error or "success"
    if now == before or (before is None and now == "success"):
        return
    if result.error:
        hint = f" (hint: {result.hint})" if result.hint else ""
        log.warning("endpoint %s: probe failed: %s: %s%s", name, result.error,
                    result.detail or "no detail", hint)
    else:
        log.info("endpoint %s: probes succeed again (was %s)", name, before)


def _median(values: list[float]) -> float:
    """statistics.median, without the module (0.2 MiB of every daemon for this one call)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
