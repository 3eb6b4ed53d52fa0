"""The daemon: one asyncio loop running a job per endpoint (and its load probe) and per
sampler, the HTTP server, reloads and signals. Every run goes through ``jobs.Jobs``."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client import CollectorRegistry

from llmmon.config import ConfigError, EndpointConfig
from llmmon.config.settings import Settings, parse_listen
from llmmon.daemon.auth import WebSecurity, load_web_config
from llmmon.daemon.exporter import Daemon, Exporter
from llmmon.daemon.extra import ExtraJobs
from llmmon.daemon.history import History, log_change
from llmmon.daemon.jobs import Job, Jobs, MissedRun
from llmmon.daemon.landing import landing_page
from llmmon.daemon.state import EndpointState, SamplerState
from llmmon.metrics import insight
from llmmon.metrics.families import RELOAD_OK, RELOAD_TIME, SAMPLER_DURATION, SAMPLER_SUCCESS
from llmmon.metrics.recorder import Metrics
from llmmon.probe.cost import DailySpend
from llmmon.probe.run import run_probe
from llmmon.probe.slo import SLOState
from llmmon.probe.transport import make_client
from llmmon.samplers import SAMPLERS, sampler_families
from llmmon.samplers.base import SamplerContext

log = logging.getLogger(__name__)

# A job's hard deadline is its own timeout plus this; APScheduler never stops a hung job.
DEADLINE_GRACE = 2.0
SETTLE_MAX = 300.0  # seconds after start at the latest, the second freeze (run())
SHUTDOWN_GRACE = 3.0

Loader = Callable[[], Settings]  # reads the configuration again, for a reload


class Runtime:
    def __init__(self, settings: Settings, load: Loader | None = None, *,
                 registry: CollectorRegistry | None = None,
                 samplers: SamplerContext | None = None, lifecycle: bool = False) -> None:
        self.settings = settings
        self._load = load  # None: nothing to reload from
        self._context = samplers or SamplerContext()
        self.metrics = Metrics(registry or CollectorRegistry(auto_describe=True),
                               sampler_families())
        self.jobs = Jobs(self.metrics)
        self.endpoints: dict[str, EndpointState] = {}
        self.samplers: dict[str, SamplerState] = {}
        self.ready = False
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="llmmon-sampler")
        # Reloads read files in a thread of their own, one at a time: a client can ask for
        # one, and asyncio's default executor is where the probes resolve names.
        self._reload_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmmon-reload")
        self._reloading = asyncio.Lock()
        self.extra = ExtraJobs(self.metrics, self.jobs, self.endpoints, self._pool,
                               self._context.nvml, lambda: "gpu" in self.samplers)
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.web: WebSecurity = load_web_config(settings.web_config_file)
        self.exporter = Exporter(Daemon(
            self.metrics, web=lambda: self.web, ready=lambda: self.ready, reload=self.reload,
            lifecycle=lifecycle,
            page=lambda: landing_page(((s.config, s.last) for s in self.endpoints.values()),
                                      self.samplers),
            probes=self.probe_history, evals=self.extra.eval_results,
        ))

    # --- lifecycle -----------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload()))
        host, port = parse_listen(self.settings.listen)
        bound = await self.exporter.start(host, port, self.web.ssl_context)
        log.info("listening on %s:%d", host, bound)
        self.jobs.start()
        self._apply(self.settings, first=True)
        self._set_reload_status(True)
        # What start-up built (modules, the config, families, clients) lives as long as the
        # daemon: frozen, no collection walks it again, and a full one no longer pauses the
        # loop that stamps probes for as long (benchmarks/gc_pauses.py). Once every endpoint
        # has probed, what the first probes built (connections, pools) is frozen too: a
        # full collection's work halved again. (A cycle alive then and dropped later is
        # never collected: a bounded, one-time cost.)
        gc.collect()
        gc.freeze()
        settle = max((e.interval + e.timeout for e in self.settings.endpoints), default=0.0)
        settled = loop.call_later(min(SETTLE_MAX, settle + DEADLINE_GRACE), _freeze_again)
        self.ready = True
        await self._stop.wait()
        settled.cancel()  # a daemon stopped before it settled freezes nothing more
        await self.shutdown()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        return 0

    async def shutdown(self) -> None:
        """Stop scheduling, cancel in-flight work, close clients and the server."""
        self.ready = False
        log.info("shutting down")
        for task in list(self._tasks):
            task.cancel()
        await self.jobs.stop(SHUTDOWN_GRACE)
        await asyncio.gather(*(s.client.aclose() for s in self.endpoints.values()),
                             return_exceptions=True)
        await self.exporter.close()
        # In the samplers' pool, never on the loop (a sampler's close may wait for its running
        # tick: NVML is not shut down under a call); bounded, as a hung sampler may never end.
        loop = asyncio.get_running_loop()
        closing = [loop.run_in_executor(self._pool, s.sampler.close)
                   for s in self.samplers.values()]
        if closing:
            await asyncio.wait(closing, timeout=SHUTDOWN_GRACE)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._reload_pool.shutdown(wait=False, cancel_futures=True)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def probe_history(self, name: str) -> list[dict[str, Any]] | None:
        state = self.endpoints.get(name)
        return None if state is None else list(state.history.entries)

    # --- configuration -------------------------------------------------------------------

    async def reload(self) -> list[str]:
        """Re-read the config; swap it in only when valid. Returns the problems, if any (they
        are logged). One reload at a time: SIGHUP and /-/reload wait for each other."""
        if self._load is None:
            return ["no configuration to reload from"]
        async with self._reloading:
            loop = asyncio.get_running_loop()
            try:
                settings = await loop.run_in_executor(self._reload_pool, self._load)
                web = await loop.run_in_executor(self._reload_pool, load_web_config,
                                                 settings.web_config_file)
            except Exception as exc:  # any failure while loading is a rejected config
                problems = exc.problems if isinstance(exc, ConfigError) else [
                    f"the configuration cannot be loaded ({type(exc).__name__})"]
                self._set_reload_status(False)
                for problem in problems:
                    log.error("reload rejected, keeping the previous config: %s", problem)
                return problems
            if settings.listen != self.settings.listen:
                log.warning("listen address changes take effect at the next restart")
            if self.web.config.tls_server_config != web.config.tls_server_config:
                log.warning("tls_server_config changes take effect at the next restart (the "
                            "certificate files are read again when they change); basic auth "
                            "changes now")
            self.web = web
            self._apply(settings)
            self._set_reload_status(True)
            log.info("configuration reloaded: %d endpoints", len(self.endpoints))
            return []

    def _set_reload_status(self, ok: bool) -> None:
        self.metrics.gauge(RELOAD_OK).set(1 if ok else 0)
        self.metrics.gauge(RELOAD_TIME).set(time.time())

    def _apply(self, settings: Settings, first: bool = False) -> None:
        wanted = {e.name: e for e in settings.endpoints}
        kept: dict[str, SLOState] = {}
        for name, state in list(self.endpoints.items()):
            new = wanted.get(name)
            if new is None or new.settings_key() != state.config.settings_key():
                # Unchanged identity keeps the series: counters survive e.g. a new interval,
                # and so does its grace (a reload is no restart of the model server).
                same = new is not None and new.identity() == state.config.identity()
                self._remove_endpoint(name, keep_series=same)
                if same:
                    kept[name] = state.slo
        for name, endpoint in wanted.items():
            if name not in self.endpoints:
                self._add_endpoint(endpoint, settings.probe_history, kept.get(name))
            self.endpoints[name].history.resize(settings.probe_history)
        for name in SAMPLERS:
            old = None if first else getattr(self.settings.samplers, name)
            self._apply_sampler(name, old, getattr(settings.samplers, name))
        self.extra.apply_evals(settings.evals)
        self.settings = settings

    def _add_endpoint(self, endpoint: EndpointConfig, history: int,
                      slo: SLOState | None = None) -> None:
        now = time.monotonic()
        if slo is None:
            slo = SLOState(started=now, grace=endpoint.startup_grace)
        slo.grace = endpoint.startup_grace
        state = EndpointState(endpoint, make_client(endpoint), DailySpend(endpoint.budget),
                              history=History(history), slo=slo)
        self.endpoints[endpoint.name] = state
        labels, host = endpoint.identity()
        self.metrics.add_endpoint(labels, host,
                                  [p.name for p in endpoint.prompts if p.expect is not None])
        self.metrics.set_slo(labels, endpoint.slo, slo, now, endpoint.interval)
        if endpoint.budget:
            self.metrics.set_budget(labels, endpoint.budget.daily_usd,
                                    endpoint.budget.daily_tokens)
        deadline = endpoint.timeout + DEADLINE_GRACE
        self.jobs.add(f"probe:{endpoint.name}", Job(lambda: self._probe(state), deadline),
                      endpoint.interval)
        self.extra.add_endpoint(state)

    def _remove_endpoint(self, name: str, keep_series: bool = False) -> None:
        state = self.endpoints.pop(name)
        self.jobs.remove(f"probe:{name}")
        labels, host = state.config.identity()
        self.extra.remove_endpoint(name, labels, keep_series)
        if not keep_series:
            self.metrics.remove_endpoint(labels, host, [p.name for p in state.config.prompts])
        self._spawn(_retire(state))

    def _apply_sampler(self, name: str, old: Any, new: Any) -> None:
        if name in self.samplers and (old != new or not new.active()):
            self.jobs.remove(f"sampler:{name}")
            self._pool.submit(self.samplers.pop(name).sampler.close)  # off the loop
            self.metrics.snapshots.publish(name, [])
        if new.active() and name not in self.samplers:
            self.samplers[name] = SamplerState(SAMPLERS[name].factory(new, self._context),
                                               new.interval)
            self.add_sampler_job(name)

    def add_sampler_job(self, name: str) -> None:
        interval = self.samplers[name].interval
        job = Job(lambda: self._sample(name), interval + DEADLINE_GRACE,
                  lambda ok, seconds: self._report_sampler(name, ok, seconds))
        self.jobs.add(f"sampler:{name}", job, interval)

    # --- the jobs' work ------------------------------------------------------------------

    async def _probe(self, state: EndpointState) -> None:
        if self.extra.skipped(state):
            return
        state.task = asyncio.current_task()  # a reload waits for it before closing the client
        endpoint = state.config
        prompt = endpoint.prompts[state.runs % len(endpoint.prompts)]
        state.runs += 1
        result = await run_probe(state.client, endpoint, prompt, listed=state.listed)
        state.spend.add(result.cost_usd, (result.prompt_tokens or 0) + (result.output_tokens or 0))
        if result.error == "rate_limited" and result.retry_after:
            state.not_before = time.monotonic() + result.retry_after
        if self.endpoints.get(endpoint.name) is state:  # not removed by a reload meanwhile
            log_change(log, endpoint.name, state.last, result)
            state.last = result
            state.history.add(endpoint, prompt, result)
            self.metrics.record_probe(state.labels, result)
            insight.record_network(self.metrics, state.labels, result)
            now = time.monotonic()
            self.metrics.record_slo(state.labels, state.slo.record(result, endpoint.slo, now))
            self.metrics.set_slo_state(state.labels, state.slo, now)
            self.extra.report_spend(state)

    async def _sample(self, name: str) -> None:
        state = self.samplers[name]
        if state.busy is not None and not state.busy.done():
            raise MissedRun  # the previous call is stuck in its thread; don't pile up
        state.busy = asyncio.get_running_loop().run_in_executor(self._pool, state.sampler.sample)
        readings = await asyncio.shield(state.busy)  # a deadline leaves the thread be
        if self.samplers.get(name) is state:  # not removed by a reload meanwhile
            self.metrics.snapshots.publish(name, readings or [])

    def _report_sampler(self, name: str, ok: bool, seconds: float) -> None:
        if name not in self.samplers:
            return
        if not ok:
            self.metrics.snapshots.publish(name, [])  # no stale values
        self.metrics.gauge(SAMPLER_SUCCESS).labels(name).set(1 if ok else 0)
        self.metrics.gauge(SAMPLER_DURATION).labels(name).set(seconds)


async def _retire(state: EndpointState) -> None:
    """Close a removed endpoint's client once its in-flight probe, if any, has ended."""
    if state.task is not None and not state.task.done():
        await asyncio.wait([state.task], timeout=state.config.timeout + DEADLINE_GRACE)
    await state.client.aclose()


def _freeze_again() -> None:
    gc.collect()
    gc.freeze()
