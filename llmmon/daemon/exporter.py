"""llmmon's HTTP face: /metrics, /healthz, /readyz, /-/reload and a landing page.

The exporter knows the daemon only through what it is handed: the metrics, the current web
security, and callables for readiness, reloading and the landing page.

``/-/reload`` answers only when the daemon was started with ``--web.enable-lifecycle``
(Prometheus's flag; 403 otherwise, as Prometheus answers), behind the same auth as /metrics,
one at a time and at most about once a second (429 beyond). A rejected configuration is
described in the log, never in the answer: its problems name files and keys."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from prometheus_client.exposition import choose_encoder

from llmmon.daemon.auth import WebSecurity
from llmmon.daemon.history import render
from llmmon.daemon.httpserver import HTTPServer, Request, Response, text
from llmmon.metrics.exposition import gzip_parts
from llmmon.metrics.families import ASYNC_TASKS, THREADS
from llmmon.metrics.recorder import Metrics

_OPEN = {"/healthz", "/readyz"}  # liveness and readiness probes carry no credentials
RELOAD_BURST, RELOADS_PER_SECOND = 3, 1.0


@dataclass(frozen=True)
class Daemon:
    """What the HTTP routes need of the daemon."""

    metrics: Metrics
    web: Callable[[], WebSecurity]  # the current one: a reload may replace it
    ready: Callable[[], bool]
    reload: Callable[[], Awaitable[list[str]]]  # the problems; none when it took
    page: Callable[[], str]  # the landing page's HTML
    # An endpoint's last probes, summarised; None when no endpoint has that name.
    probes: Callable[[str], list[dict[str, Any]] | None] = lambda name: None
    # The last run of each evaluation suite on an endpoint, item by item.
    evals: Callable[[str], dict[str, Any]] = lambda name: {}
    lifecycle: bool = False  # whether /-/reload may be used (--web.enable-lifecycle)


class ReloadLimit:
    """A token bucket: RELOAD_BURST reloads at once, then RELOADS_PER_SECOND."""

    def __init__(self, burst: int = RELOAD_BURST, rate: float = RELOADS_PER_SECOND) -> None:
        self.burst, self.rate = burst, rate
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Exporter:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        # 256 slots: a crowd of idle or silent-TLS connections is evicted oldest-first, and
        # a TLS handshake needs its slot long enough to finish (at 64 a fast-reconnecting
        # crowd starved 4 of 20 TLS scrapes); a held connection costs about 10 KB.
        # Bodies: only /-/reload takes one, and an empty one; 1 MiB each on 256 connections
        # would be a quarter of a GiB held for unauthenticated clients.
        self._server = HTTPServer(self.handle, max_connections=256, max_body=4096)
        # Rendering runs in one thread of its own: it never occupies the event loop that
        # timestamps probes, and concurrent scrapes of the same format share one render.
        self._render_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmmon-render")
        self._renders: dict[tuple[str, bool], asyncio.Future[bytes]] = {}
        self._reload_limit = ReloadLimit()
        self._reloading = False

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> int:
        return await self._server.start(host, port, ssl_context)

    async def close(self) -> None:
        await self._server.close()
        self._render_pool.shutdown(wait=False, cancel_futures=True)

    async def handle(self, request: Request) -> Response:
        if request.path not in _OPEN and not await self.daemon.web().authorized(
            request.headers.get("authorization")
        ):
            return text(401, "unauthorized\n", **{"WWW-Authenticate": 'Basic realm="llmmon"'})
        if request.path == "/-/reload":
            return await self._reload(request)
        if request.method not in ("GET", "HEAD"):
            return text(405, "method not allowed\n", Allow="GET, HEAD")
        if request.path == "/metrics":
            return await self._metrics(request)
        if request.path == "/healthz":
            return text(200, "ok\n")
        if request.path == "/readyz":
            return text(200, "ready\n") if self.daemon.ready() else text(503, "not ready\n")
        if request.path == "/probes":
            return self._probes(request)
        if request.path == "/":
            return Response(200, self.daemon.page().encode(),
                            {"Content-Type": "text/html; charset=utf-8"})
        return text(404, "not found\n")

    async def _reload(self, request: Request) -> Response:
        if request.method not in ("POST", "PUT"):
            return text(405, "use POST\n", Allow="POST, PUT")
        if not self.daemon.lifecycle:
            return text(403, "Lifecycle API is not enabled.\n")
        if self._reloading or not self._reload_limit.take():
            return text(429, "a reload is running or was just made; retry in a second\n",
                        **{"Retry-After": "1"})
        self._reloading = True
        try:
            problems = await self.daemon.reload()
        finally:
            self._reloading = False
        if problems:  # they name files and keys: the log has them, the answer does not
            return text(500, "reload rejected, see the log; the previous config is kept\n")
        return text(200, "reloaded\n")

    def _probes(self, request: Request) -> Response:
        name = request.query.get("endpoint", "")
        entries = self.daemon.probes(name)
        if entries is None:
            return text(404 if name else 400, "give ?endpoint=NAME, one of the configured "
                        "endpoints (see /)\n")
        as_json = request.query.get("format") == "json"
        body = render(name, entries, as_json, self.daemon.evals(name)).encode()
        kind = "application/json" if as_json else "text/plain; charset=utf-8"
        return Response(200, body, {"Content-Type": kind})

    async def _metrics(self, request: Request) -> Response:
        metrics = self.daemon.metrics
        metrics.gauge(ASYNC_TASKS).set(len(asyncio.all_tasks()))
        metrics.gauge(THREADS).set(threading.active_count())
        _, content_type = choose_encoder(request.headers.get("accept", ""))
        openmetrics = content_type.startswith("application/openmetrics-text")
        compress = "gzip" in request.headers.get("accept-encoding", "")
        key = (content_type, compress)
        future = self._renders.get(key)
        if future is None:
            loop = asyncio.get_running_loop()

            def render() -> bytes:
                if compress:
                    return gzip_parts(metrics.exposition_parts(openmetrics))
                return metrics.exposition(openmetrics)

            future = loop.run_in_executor(self._render_pool, render)
            self._renders[key] = future
            future.add_done_callback(lambda _: self._renders.pop(key, None))
        body = await asyncio.shield(future)
        headers = {"Content-Type": content_type}
        if compress:
            headers["Content-Encoding"] = "gzip"
        return Response(200, body, headers)
