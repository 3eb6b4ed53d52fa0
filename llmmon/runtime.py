"""The daemon: one asyncio loop running APScheduler jobs (a probe job per endpoint, a job per
sampler), the HTTP server, reloads and signals."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry

from llmmon import metrics as m
from llmmon.config import ConfigError, EndpointBase, Settings, load_settings, parse_listen
from llmmon.cost import DailySpend
from llmmon.exporter import Exporter
from llmmon.load import run_load
from llmmon.metrics import Metrics
from llmmon.probe import ProbeResult, run_probe
from llmmon.samplers import Sampler
from llmmon.samplers.gpu import GPUSampler
from llmmon.samplers.host import HostSampler
from llmmon.samplers.process import GPUMemoryByPid, ProcessSampler
from llmmon.transport import make_client
from llmmon.web import WebSecurity, load_web_config

log = logging.getLogger(__name__)

# A job's hard deadline is its own timeout plus this; APScheduler never stops a hung job.
DEADLINE_GRACE = 2.0
SHUTDOWN_GRACE = 3.0


@dataclass
class EndpointState:
    config: EndpointBase
    client: httpx.AsyncClient
    spend: DailySpend
    runs: int = 0
    last: ProbeResult | None = None
    task: asyncio.Task[Any] | None = None
    not_before: float = 0.0  # monotonic time before which the server asked not to be probed

    @property
    def labels(self) -> tuple[str, str, str]:
        return _identity(self.config)[0]

    @property
    def host(self) -> str:
        return _identity(self.config)[1]

    def skip_reason(self) -> str | None:
        if self.spend.exhausted():
            return "budget"
        if time.monotonic() < self.not_before:
            return "retry_after"
        return None


@dataclass
class SamplerState:
    sampler: Sampler
    interval: float
    busy: asyncio.Future[Any] | None = field(default=None)


class Runtime:
    def __init__(self, settings: Settings, config_path: Path | None, *,
                 adjust: Callable[[Settings], None] | None = None,
                 registry: CollectorRegistry | None = None, nvml: ModuleType | None = None
                 ) -> None:
        # `adjust` amends every loaded config, the first and each reload (the demo adds its
        # endpoint and process target this way).
        self._adjust = adjust or (lambda _: None)
        self._adjust(settings)
        self.settings = settings
        self.config_path = config_path
        self._nvml = nvml  # None: the real pynvml
        self.metrics = Metrics(registry or CollectorRegistry(auto_describe=True))
        self.endpoints: dict[str, EndpointState] = {}
        self.samplers: dict[str, SamplerState] = {}
        self.ready = False
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_listener(
            self._on_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED | EVENT_JOB_ERROR
        )
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="llmmon-sampler")
        self._stop = asyncio.Event()
        self._gpu_memory = GPUMemoryByPid()  # the GPU sampler's per-pid memory, for targets
        self._tasks: set[asyncio.Task[Any]] = set()
        self.web: WebSecurity = load_web_config(settings.web_config_file)
        self.exporter = Exporter(self)

    # --- lifecycle -----------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload()))
        host, port = self.listen_address
        bound = await self.exporter.start(host, port, self.web.ssl_context)
        log.info("listening on %s:%d", host, bound)
        self._scheduler.start()
        self._apply(self.settings)
        self._set_reload_status(True)
        self.ready = True
        await self._stop.wait()
        await self.shutdown()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        return 0

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_listen(self.settings.listen)

    async def shutdown(self) -> None:
        """Stop scheduling, cancel in-flight work, close clients and the server."""
        self.ready = False
        log.info("shutting down")
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=SHUTDOWN_GRACE)
        await asyncio.gather(*(s.client.aclose() for s in self.endpoints.values()),
                             return_exceptions=True)
        await self.exporter.close()
        for state in self.samplers.values():
            state.sampler.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- configuration -------------------------------------------------------------------

    async def reload(self) -> list[str]:
        """Re-read the config; swap it in only when valid. Returns the problems, if any."""
        try:
            settings = await asyncio.to_thread(load_settings, self.config_path)
            web = await asyncio.to_thread(load_web_config, settings.web_config_file)
            self._adjust(settings)
        except ConfigError as exc:
            self._set_reload_status(False)
            for problem in exc.problems:
                log.error("reload rejected, keeping the previous config: %s", problem)
            return exc.problems
        if settings.listen != self.settings.listen:
            log.warning("listen address changes take effect at the next restart")
        if self.web.ssl_context is not None or web.ssl_context is not None:
            log.warning("TLS settings change at the next restart; basic auth changes now")
        self.web = web
        self._apply(settings)
        self.settings = settings
        self._set_reload_status(True)
        log.info("configuration reloaded: %d endpoints", len(self.endpoints))
        return []

    def _set_reload_status(self, ok: bool) -> None:
        self.metrics.gauge(m.RELOAD_OK).set(1 if ok else 0)
        self.metrics.gauge(m.RELOAD_TIME).set(time.time())

    def _apply(self, settings: Settings) -> None:
        wanted = {e.name: e for e in settings.endpoints}
        for name, state in list(self.endpoints.items()):
            new = wanted.get(name)
            if new is None or _settings_of(new) != _settings_of(state.config):
                # Unchanged identity keeps the series: counters survive e.g. a new interval.
                same = new is not None and _identity(new) == (state.labels, state.host)
                self._remove_endpoint(name, keep_series=same)
        for name, endpoint in wanted.items():
            if name not in self.endpoints:
                self._add_endpoint(endpoint)
        self._apply_samplers(settings)

    def _add_endpoint(self, endpoint: EndpointBase) -> None:
        state = EndpointState(endpoint, make_client(endpoint), DailySpend(endpoint.budget))
        self.endpoints[endpoint.name] = state
        checked = [p.name for p in endpoint.prompts if p.expect is not None]
        self.metrics.add_endpoint(state.labels, state.host, checked)
        if endpoint.budget:
            self.metrics.set_budget(state.labels, endpoint.budget.daily_usd,
                                    endpoint.budget.daily_tokens)
        self._schedule(f"probe:{endpoint.name}", self._probe_job, endpoint.interval,
                       endpoint.name)
        if endpoint.load:
            self._schedule(f"load:{endpoint.name}", self._load_job, endpoint.load.every,
                           endpoint.name, first_delay=endpoint.interval)

    def _remove_endpoint(self, name: str, keep_series: bool = False) -> None:
        state = self.endpoints.pop(name)
        self._unschedule(f"probe:{name}")
        self._unschedule(f"load:{name}")
        if not keep_series:
            self.metrics.remove_endpoint(state.labels, state.host,
                                         [p.name for p in state.config.prompts])
        self._spawn(_retire(state))

    def _apply_samplers(self, settings: Settings) -> None:
        cfg = settings.samplers
        wanted: dict[str, tuple[bool, float, Any]] = {
            "host": (cfg.host.enabled, cfg.host.interval, lambda: HostSampler(cfg.host)),
            "gpu": (cfg.gpu.enabled is not False, cfg.gpu.interval,
                    lambda: GPUSampler(self._nvml, process_memory=self._gpu_memory)),
            "process": (cfg.process.enabled and bool(cfg.process.targets), cfg.process.interval,
                        lambda: ProcessSampler(cfg.process.targets, self._gpu_memory)),
        }
        old = self.settings.samplers if self.settings is not settings else None
        for name, (enabled, interval, factory) in wanted.items():
            changed = old is None or getattr(old, name) != getattr(cfg, name)
            if name in self.samplers and (changed or not enabled):
                self._unschedule(f"sampler:{name}")
                self.samplers.pop(name).sampler.close()
                self.metrics.snapshots.publish(name, [])
            if enabled and name not in self.samplers:
                self.samplers[name] = SamplerState(factory(), interval)
                self._schedule(f"sampler:{name}", self._sampler_job, interval, name)

    # --- jobs ----------------------------------------------------------------------------

    def _schedule(self, job_id: str, func: Any, interval: float, arg: str,
                  first_delay: float = 0.0) -> None:
        # Jitter spreads jobs that share an interval; the first run comes within ~2 s so a
        # fresh daemon has data before its first scrape.
        delay = first_delay + random.uniform(0.1, min(2.0, interval))
        first = datetime.now(UTC) + timedelta(seconds=delay)
        self._scheduler.add_job(
            self._run_job, IntervalTrigger(seconds=interval, jitter=min(interval * 0.05, 5.0)),
            args=(func, arg), id=job_id, name=job_id, max_instances=1, coalesce=True,
            misfire_grace_time=max(1, int(interval)), next_run_time=first, replace_existing=True,
        )
        self.metrics.counter(m.MISSED_RUNS).labels(job_id)
        self.metrics.counter(m.JOB_ERRORS).labels(job_id)

    def _unschedule(self, job_id: str) -> None:
        if self._scheduler.get_job(job_id):
            self._scheduler.remove_job(job_id)

    def _on_event(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_ERROR:
            self.metrics.counter(m.JOB_ERRORS).labels(event.job_id).inc()
        else:
            self.metrics.counter(m.MISSED_RUNS).labels(event.job_id).inc()

    async def _run_job(self, job: Callable[[str], Awaitable[None]], name: str) -> None:
        """Every scheduled run goes through here: a run cancelled because llmmon is stopping
        ends quietly, where APScheduler would log it as a failed job with a traceback."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # so that shutdown can cancel it
        try:
            await job(name)
        except asyncio.CancelledError:
            if not self._stop.is_set():
                raise
        finally:
            self._tasks.discard(task)

    async def _probe_job(self, name: str) -> None:
        state = self.endpoints.get(name)
        if state is None:
            return
        if reason := state.skip_reason():
            self.metrics.record_skip(state.labels, reason)
            return
        state.task = asyncio.current_task()  # a reload waits for it before closing the client
        endpoint = state.config
        prompt = endpoint.prompts[state.runs % len(endpoint.prompts)]
        state.runs += 1
        try:
            async with asyncio.timeout(endpoint.timeout + DEADLINE_GRACE):
                result = await run_probe(state.client, endpoint, prompt)
        except TimeoutError:
            log.error("probe job %s passed its hard deadline", name)
            self.metrics.counter(m.JOB_ERRORS).labels(f"probe:{name}").inc()
            return
        except Exception:
            log.exception("probe job %s failed", name)
            self.metrics.counter(m.JOB_ERRORS).labels(f"probe:{name}").inc()
            return
        state.spend.add(result.cost_usd, (result.prompt_tokens or 0) + (result.output_tokens or 0))
        if result.error == "rate_limited" and result.retry_after:
            state.not_before = time.monotonic() + result.retry_after
        if self.endpoints.get(name) is state:  # not removed by a reload meanwhile
            state.last = result
            self.metrics.record_probe(state.labels, result)
            if result.error:
                log.debug("probe %s failed: %s", name, result.error)

    async def _load_job(self, name: str) -> None:
        state = self.endpoints.get(name)
        if state is None or state.config.load is None:
            return
        if reason := state.skip_reason():
            self.metrics.record_skip(state.labels, reason)
            return
        load = state.config.load
        try:
            async with make_client(state.config, load.concurrency) as client:
                async with asyncio.timeout(load.timeout + state.config.timeout + DEADLINE_GRACE):
                    result = await run_load(client, state.config, load)
        except Exception:
            log.exception("load job %s failed", name)
            self.metrics.counter(m.JOB_ERRORS).labels(f"load:{name}").inc()
            return
        state.spend.add(result.spent_usd, result.spent_tokens)
        if self.endpoints.get(name) is state:
            self.metrics.record_load(state.labels, result)

    async def _sampler_job(self, name: str) -> None:
        state = self.samplers.get(name)
        if state is None:
            return
        if state.busy is not None and not state.busy.done():
            # The previous call is stuck in its thread; a second would only pile up.
            self.metrics.counter(m.MISSED_RUNS).labels(f"sampler:{name}").inc()
            return
        start = time.perf_counter()
        ok = False
        state.busy = asyncio.get_running_loop().run_in_executor(self._pool, state.sampler.sample)
        try:
            async with asyncio.timeout(state.interval + DEADLINE_GRACE):
                readings = await asyncio.shield(state.busy)
            self.metrics.snapshots.publish(name, readings or [])
            ok = True
        except TimeoutError:
            log.error("sampler %s passed its hard deadline", name)
            self.metrics.counter(m.JOB_ERRORS).labels(f"sampler:{name}").inc()
        except Exception:
            log.exception("sampler %s failed", name)
            self.metrics.counter(m.JOB_ERRORS).labels(f"sampler:{name}").inc()
        if not ok:
            self.metrics.snapshots.publish(name, [])  # no stale values
        self.metrics.gauge(m.SAMPLER_SUCCESS).labels(name).set(1 if ok else 0)
        self.metrics.gauge(m.SAMPLER_DURATION).labels(name).set(time.perf_counter() - start)


def _settings_of(endpoint: EndpointBase) -> tuple[type, dict[str, Any]]:
    """What an endpoint is configured with. Pydantic's == also compares private attributes,
    and every load makes a new ApiKey, so == would call every keyed endpoint changed."""
    return type(endpoint), endpoint.model_dump()


def _identity(endpoint: EndpointBase) -> tuple[tuple[str, str, str], str]:
    """The endpoint's label values and URL host: what its series are named by."""
    return ((endpoint.name, getattr(endpoint, "provider", ""), endpoint.model),
            httpx.URL(endpoint.url).host)


async def _retire(state: EndpointState) -> None:
    """Close a removed endpoint's client once its in-flight probe, if any, has ended."""
    if state.task is not None and not state.task.done():
        await asyncio.wait([state.task], timeout=state.config.timeout + DEADLINE_GRACE)
    await state.client.aclose()
