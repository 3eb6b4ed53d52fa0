"""llmmon's HTTP face: /metrics, /healthz, /readyz, /-/reload and a landing page."""

from __future__ import annotations

import asyncio
import gzip
import html
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from prometheus_client.exposition import choose_encoder

from llmmon import __version__
from llmmon import metrics as m
from llmmon.httpserver import HTTPServer, Request, Response, text

if TYPE_CHECKING:
    from llmmon.runtime import Runtime

_OPEN = {"/healthz", "/readyz"}  # liveness and readiness probes carry no credentials


class Exporter:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._server = HTTPServer(self.handle)
        # Rendering runs in one thread of its own: it never occupies the event loop that
        # timestamps probes, and concurrent scrapes of the same format share one render.
        self._render_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmmon-render")
        self._renders: dict[tuple[str, bool], asyncio.Future[bytes]] = {}

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> int:
        return await self._server.start(host, port, ssl_context)

    async def close(self) -> None:
        await self._server.close()
        self._render_pool.shutdown(wait=False, cancel_futures=True)

    async def handle(self, request: Request) -> Response:
        if request.path not in _OPEN and not await self.runtime.web.authorized(
            request.headers.get("authorization")
        ):
            return text(401, "unauthorized\n", **{"WWW-Authenticate": 'Basic realm="llmmon"'})
        if request.path == "/-/reload":
            if request.method not in ("POST", "PUT"):
                return text(405, "use POST\n", Allow="POST")
            problems = await self.runtime.reload()
            if problems:
                return text(500, "reload failed, previous config kept:\n"
                            + "".join(f"  {p}\n" for p in problems))
            return text(200, "reloaded\n")
        if request.method not in ("GET", "HEAD"):
            return text(405, "method not allowed\n", Allow="GET, HEAD")
        if request.path == "/metrics":
            return await self._metrics(request)
        if request.path == "/healthz":
            return text(200, "ok\n")
        if request.path == "/readyz":
            return text(200, "ready\n") if self.runtime.ready else text(503, "not ready\n")
        if request.path == "/":
            return Response(200, landing_page(self.runtime).encode(),
                            {"Content-Type": "text/html; charset=utf-8"})
        return text(404, "not found\n")

    async def _metrics(self, request: Request) -> Response:
        self.runtime.metrics.gauge(m.ASYNC_TASKS).set(len(asyncio.all_tasks()))
        self.runtime.metrics.gauge(m.THREADS).set(threading.active_count())
        _, content_type = choose_encoder(request.headers.get("accept", ""))
        openmetrics = content_type.startswith("application/openmetrics-text")
        compress = "gzip" in request.headers.get("accept-encoding", "")
        key = (content_type, compress)
        future = self._renders.get(key)
        if future is None:
            loop = asyncio.get_running_loop()
            metrics = self.runtime.metrics

            def render() -> bytes:
                body = metrics.exposition(openmetrics)
                return gzip.compress(body, compresslevel=1) if compress else body

            future = loop.run_in_executor(self._render_pool, render)
            self._renders[key] = future
            future.add_done_callback(lambda _: self._renders.pop(key, None))
        body = await asyncio.shield(future)
        headers = {"Content-Type": content_type}
        if compress:
            headers["Content-Encoding"] = "gzip"
        return Response(200, body, headers)


def landing_page(runtime: Runtime) -> str:
    """A small status page; every value is escaped, and URLs show no query (nor userinfo)."""
    rows = []
    now = time.time()
    for state in runtime.endpoints.values():
        ep, last = state.config, state.last
        url = f"{ep.url.split('?', 1)[0]}"
        if last is None:
            outcome, ttft, age = "pending", "", ""
        else:
            outcome = "ok" if last.ok else last.error or ""
            ttft = f"{last.ttft * 1000:.1f} ms" if last.ttft is not None else ""
            age = f"{now - last.finished_unix:.0f} s ago"
        cells = (ep.name, getattr(ep, "provider", ""), ep.model, url, outcome, ttft, age)
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    samplers = ", ".join(html.escape(n) for n in runtime.samplers) or "none"
    table = "\n".join(rows) or '<tr><td colspan="7">no endpoints configured</td></tr>'
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
<th>TTFT</th><th>when</th></tr>
{table}
</table>
<p>Samplers: {samplers}</p>
</body></html>
"""
