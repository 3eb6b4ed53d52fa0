"""The landing page at /: what llmmon probes and samples, and how the last probes went."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from urllib.parse import quote

from llmmon import __version__
from llmmon.config import EndpointConfig
from llmmon.probe.result import ProbeResult


def landing_page(endpoints: Iterable[tuple[EndpointConfig, ProbeResult | None]],
                 samplers: Iterable[str]) -> str:
    """A small status page: each endpoint with its last result, and the samplers running.
    Every value is escaped, and URLs show no query (nor userinfo)."""
    rows = []
    now = time.time()
    for ep, last in endpoints:
        url = f"{ep.url.split('?', 1)[0]}"
        if last is None:
            outcome, ttft, age, why = "pending", "", "", ""
        else:
            outcome = "ok" if last.ok else last.error or ""
            ttft = f"{last.ttft * 1000:.1f} ms" if last.ttft is not None else ""
            age = f"{now - last.finished_unix:.0f} s ago"
            why = " — hint: ".join(x for x in (last.detail, last.hint) if x)
        cells = (ep.name, ep.provider_name, ep.model, url, outcome, ttft, age, why)
        link = f'<td><a href="/probes?endpoint={quote(ep.name)}">last probes</a></td>'
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
                    + link + "</tr>")
    running = ", ".join(html.escape(n) for n in samplers) or "none"
    table = "\n".join(rows) or '<tr><td colspan="9">no endpoints configured</td></tr>'
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>llmmon</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:left}}</style>
</head><body>
<h1>llmmon {html.escape(__version__)}</h1>
<p>Probes LLM endpoints and samples the machine under them, for Prometheus.
<a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a> ·
<a href="/readyz">/readyz</a></p>
<h2>Endpoints</h2>
<table><tr><th>name</th><th>provider</th><th>model</th><th>url</th><th>last result</th>
<th>TTFT</th><th>when</th><th>why</th><th></th></tr>
{table}
</table>
<p>Samplers: {running}</p>
</body></html>
"""
