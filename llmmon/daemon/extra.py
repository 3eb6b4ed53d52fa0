"""The slower jobs beside each endpoint's probe: its load probe (with GPU energy), cache
probe, model information, and the evaluation suites that cover it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from llmmon.config.evals import EvalSuite
from llmmon.daemon.jobs import Job, Jobs
from llmmon.daemon.state import EndpointState
from llmmon.evals.runner import EvalRun, run_suite
from llmmon.metrics import insight
from llmmon.metrics.recorder import Metrics
from llmmon.probe.cache import run_cache_probe
from llmmon.probe.modelinfo import fetch_model_info
from llmmon.probe.spread import run_load_spread
from llmmon.probe.transport import make_client
from llmmon.samplers.energy import joules_between, read_energy

DEADLINE_GRACE = 2.0
MODEL_INFO_TIMEOUT = 5.0
NVML_TIMEOUT = 5.0


@dataclass
class EvalState:
    suite: EvalSuite
    endpoint: str
    offset: int = 0  # where the next run starts in the suite's items
    last: EvalRun | None = None


class ExtraJobs:
    def __init__(self, metrics: Metrics, jobs: Jobs, endpoints: dict[str, EndpointState],
                 pool: Executor, nvml: ModuleType | None,
                 gpus: Callable[[], bool]) -> None:
        self.metrics, self.jobs, self.endpoints = metrics, jobs, endpoints
        self._pool, self._nvml, self._gpus = pool, nvml, gpus
        self.evals: dict[tuple[str, str], EvalState] = {}

    # --- per endpoint --------------------------------------------------------------------

    def add_endpoint(self, state: EndpointState) -> None:
        endpoint, name = state.config, state.config.name
        deadline = endpoint.timeout + DEADLINE_GRACE
        # A reload that kept the endpoint's series may have turned a feature off.
        insight.remove_features(self.metrics, state.labels, cache=not endpoint.cache_probe,
                                model=not endpoint.model_info,
                                energy=not (endpoint.load and endpoint.load.energy))
        if endpoint.load:
            self.jobs.add(f"load:{name}", Job(lambda: self._load(state),
                                              deadline + endpoint.load.timeout),
                          endpoint.load.every, first_delay=endpoint.interval)
        if endpoint.cache_probe:
            insight.add_cache(self.metrics, state.labels)
            self.jobs.add(f"cache:{name}", Job(lambda: self._cache(state), 2 * deadline),
                          endpoint.cache_probe.every, first_delay=endpoint.interval)
        if endpoint.model_info > 0:
            self.jobs.add(f"model:{name}", Job(lambda: self._model(state),
                                               MODEL_INFO_TIMEOUT + DEADLINE_GRACE),
                          endpoint.model_info)

    def remove_endpoint(self, name: str, labels: tuple[str, str, str], keep_series: bool
                        ) -> None:
        for kind in ("load", "cache", "model"):
            self.jobs.remove(f"{kind}:{name}")
        if not keep_series:  # its suites start again under its new labels
            insight.remove_endpoint(self.metrics, labels)
            for key in [k for k in self.evals if k[1] == name]:
                self.jobs.remove(_eval_job(key))
                del self.evals[key]

    def report_spend(self, state: EndpointState) -> None:
        if state.config.budget is not None:
            usd, tokens = state.spend.today()
            self.metrics.set_spent(state.labels, usd, tokens)

    def _current(self, state: EndpointState) -> bool:
        """The endpoint is still configured under the same series: not removed, nor given
        another identity by a reload meanwhile (one that kept it keeps the result)."""
        now = self.endpoints.get(state.config.name)
        return now is not None and now.labels == state.labels

    def skipped(self, state: EndpointState) -> bool:
        """The budget is spent or the server's Retry-After has not passed: counted, not sent."""
        if reason := state.skip_reason():
            self.metrics.record_skip(state.labels, reason)
            return True
        return False

    async def _load(self, state: EndpointState) -> None:
        load = state.config.load
        if load is None or self.skipped(state):
            return
        before = await self._energy() if load.energy else None
        result = await run_load_spread(state.config, load)
        joules = joules_between(before, await self._energy()) if before else None
        state.spend.add(result.spent_usd, result.spent_tokens)
        if self._current(state):
            self.metrics.record_load(state.labels, result)
            if joules is not None:
                insight.record_energy(self.metrics, state.labels, joules, result.output_tokens)
            elif not self._gpus():  # the GPU sampler was turned off: no figure of old
                insight.remove_features(self.metrics, state.labels, energy=True)
            self.report_spend(state)

    async def _energy(self) -> dict[str, int] | None:
        if not self._gpus():  # the GPU sampler is off: no NVML here
            return None
        read = asyncio.get_running_loop().run_in_executor(self._pool, read_energy, self._nvml)
        try:  # a hung NVML call costs this reading, never the load probe's result
            return await asyncio.wait_for(asyncio.shield(read), NVML_TIMEOUT)
        except TimeoutError:
            return None

    async def _cache(self, state: EndpointState) -> None:
        config = state.config.cache_probe
        if config is None or self.skipped(state):
            return
        cold, warm = await run_cache_probe(state.client, state.config, config)
        for result in (cold, warm):
            if result is not None:
                state.spend.add(result.cost_usd,
                                (result.prompt_tokens or 0) + (result.output_tokens or 0))
        if self._current(state):
            insight.record_cache(self.metrics, state.labels, cold, warm)
            self.report_spend(state)

    async def _model(self, state: EndpointState) -> None:
        info = await fetch_model_info(state.client, state.config, MODEL_INFO_TIMEOUT)
        if self._current(state):
            state.model = info
            insight.record_model(self.metrics, state.labels, info, time.time())

    # --- evaluation suites ---------------------------------------------------------------

    def apply_evals(self, suites: list[EvalSuite]) -> None:
        """Jobs for every (suite, endpoint) pair the suites cover; a changed suite is
        rescheduled, keeping its place in the items."""
        wanted = {(s.name, name): s for s in suites for name in self.endpoints if s.covers(name)}
        for key, state in list(self.evals.items()):
            suite = wanted.get(key)
            if suite is None or suite.model_dump() != state.suite.model_dump():
                self.jobs.remove(_eval_job(key))
                del self.evals[key]
                endpoint = self.endpoints.get(key[1])
                if suite is None and endpoint is not None:
                    insight.remove_suite(self.metrics, endpoint.labels, key[0])
                if suite is not None:
                    self._add_eval(key, suite, state.offset)
        for key, suite in wanted.items():
            if key not in self.evals:
                self._add_eval(key, suite, 0)

    def _add_eval(self, key: tuple[str, str], suite: EvalSuite, offset: int) -> None:
        self.evals[key] = EvalState(suite, key[1], offset)
        insight.add_eval(self.metrics, self.endpoints[key[1]].labels, suite.name)
        self.jobs.add(_eval_job(key), Job(lambda: self._eval(key), suite.timeout + DEADLINE_GRACE),
                      suite.every)

    async def _eval(self, key: tuple[str, str]) -> None:
        evaluation, state = self.evals.get(key), self.endpoints.get(key[1])
        if evaluation is None or state is None:
            return
        # A client of its own, as wide as the suite: evals never hold the connections the
        # endpoint's probe needs (a false timeout would burn its objectives).
        async with make_client(state.config, evaluation.suite.concurrency) as client:
            run = await run_suite(client, state.config, evaluation.suite, evaluation.offset,
                                  exhausted=lambda: state.skip_reason() is not None,
                                  spend=state.spend.add)
        evaluation.offset = (evaluation.offset + run.advanced) % max(
            1, len(evaluation.suite.loaded_items()))
        if self.evals.get(key) is evaluation and self._current(state):
            evaluation.last = run
            insight.record_eval(self.metrics, state.labels, run)
            self.report_spend(state)

    def eval_results(self, endpoint: str) -> dict[str, Any]:
        """The last run of each suite on ``endpoint``, item by item, for /probes."""
        return {suite: state.last.as_dict() for (suite, name), state in self.evals.items()
                if name == endpoint and state.last is not None}


def _eval_job(key: tuple[str, str]) -> str:
    return f"eval:{key[0]}:{key[1]}"
