"""The HTML page of a run: one self-contained file, its style sheet inline, its tables, and
its plots as inline SVG."""

from __future__ import annotations

from collections.abc import Sequence

from llmmon.bench.model import BenchRun, StepSummary
from llmmon.bench.report.plots import plots
from llmmon.bench.report.svg import _e
from llmmon.bench.report.text import (
    NONE,
    _by_load,
    _errors_text,
    _knee_text,
    _load,
    _model_facts,
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
