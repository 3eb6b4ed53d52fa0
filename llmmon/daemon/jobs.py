"""Every scheduled run of the daemon goes through ``Jobs.run``, as node_exporter's collectors
go through its ``execute()``: the one place that enforces a job's hard deadline, counts
missed runs and job errors, reports a run's success and duration, and lets shutdown cancel
what is in flight.

APScheduler 3 runs each job with ``max_instances=1`` and ``coalesce``, and never stops a hung
job itself, hence the deadline here.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from llmmon.metrics.families import JOB_ERRORS, MISSED_RUNS
from llmmon.metrics.recorder import Metrics

log = logging.getLogger(__name__)


class MissedRun(Exception):
    """Raised by a job that cannot run now (its previous run is still stuck somewhere)."""


Report = Callable[[bool, float], None]  # (succeeded, seconds): a job's own success gauges


@dataclass(frozen=True)
class Job:
    work: Callable[[], Awaitable[None]]
    deadline: float  # seconds a run may take before it is cancelled and counted as an error
    report: Report | None = None


class Jobs:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._jobs: dict[str, Job] = {}
        self._running: set[asyncio.Task[Any]] = set()
        self.stopping = False
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_listener(
            self._on_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED | EVENT_JOB_ERROR
        )

    def start(self) -> None:
        self._scheduler.start()

    def add(self, job_id: str, job: Job, interval: float, first_delay: float = 0.0) -> None:
        """Schedule ``job`` every ``interval`` seconds, the first run within ~2 s (after
        ``first_delay``) so a fresh daemon has data before its first scrape; jitter spreads
        jobs that share an interval."""
        self._jobs[job_id] = job
        delay = first_delay + random.uniform(0.1, min(2.0, interval))
        self._scheduler.add_job(
            self.run, IntervalTrigger(seconds=interval, jitter=min(interval * 0.05, 5.0)),
            args=(job_id,), id=job_id, name=job_id, max_instances=1, coalesce=True,
            misfire_grace_time=max(1, int(interval)), replace_existing=True,
            next_run_time=datetime.now(UTC) + timedelta(seconds=delay),
        )
        self._metrics.counter(MISSED_RUNS).labels(job_id)
        self._metrics.counter(JOB_ERRORS).labels(job_id)

    def remove(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)
        if self._scheduler.running and self._scheduler.get_job(job_id):
            self._scheduler.remove_job(job_id)

    async def run(self, job_id: str) -> None:
        """One run of a job, bounded by its deadline; never raises but for cancellation."""
        job = self._jobs.get(job_id)
        if job is None:
            return  # removed by a reload after this run was due
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)  # so that shutdown can cancel it
        start, ok, missed = time.perf_counter(), False, False
        try:
            async with asyncio.timeout(job.deadline):
                await job.work()
            ok = True
        except MissedRun:
            missed = True  # nothing ran: the last run's success and duration stand
            self._metrics.counter(MISSED_RUNS).labels(job_id).inc()
        except TimeoutError:
            log.error("%s passed its hard deadline", job_id)
            self._metrics.counter(JOB_ERRORS).labels(job_id).inc()
        except asyncio.CancelledError:
            # A run cancelled because llmmon is stopping ends quietly, where APScheduler
            # would log it as a failed job with a traceback.
            if not self.stopping:
                raise
        except Exception:
            log.exception("%s failed", job_id)
            self._metrics.counter(JOB_ERRORS).labels(job_id).inc()
        finally:
            self._running.discard(task)
        if job.report is not None and not missed:
            job.report(ok, time.perf_counter() - start)

    def _on_event(self, event: JobEvent) -> None:
        family = JOB_ERRORS if event.code == EVENT_JOB_ERROR else MISSED_RUNS
        self._metrics.counter(family).labels(event.job_id).inc()

    async def stop(self, grace: float) -> None:
        """Stop scheduling and cancel the runs in flight, waiting ``grace`` for them."""
        self.stopping = True
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.wait(self._running, timeout=grace)
