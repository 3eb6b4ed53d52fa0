"""``Metrics``: the live families of one daemon, what records into them, and /metrics.

Probe and self-monitoring families are llmmon's cached-rendering families
(``exposition.py``); samplers' readings, ``process_*`` and ``python_*`` go through
prometheus-client.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from llmmon import __version__
from llmmon.metrics.exposition import FamiliesCollector, LiveFamily
from llmmon.metrics.families import (
    BUDGET_SPENT_TOKENS,
    BUDGET_SPENT_USD,
    BUDGET_TOKENS,
    BUDGET_USD,
    BUILD_INFO,
    CHECK_RESULTS,
    CONSECUTIVE_FAILURES,
    ENDPOINT_INFO,
    HTTP_PHASES,
    LIVE_FAMILIES,
    LOAD_CONCURRENCY,
    LOAD_DURATION,
    LOAD_ERROR_REASONS,
    LOAD_ERRORS,
    LOAD_LAST,
    LOAD_PERCENTILES,
    LOAD_RPS,
    LOAD_TPS,
    LOAD_TTFT,
    ON_DEMAND,
    PROBE_CACHED_TOKENS,
    PROBE_CHECKS,
    PROBE_COALESCED,
    PROBE_COST,
    PROBE_E2E,
    PROBE_ERRORS,
    PROBE_FAMILIES,
    PROBE_INTERVAL,
    PROBE_ITL,
    PROBE_LABELS,
    PROBE_LAST_SUCCESS,
    PROBE_OUTPUT_TOKENS,
    PROBE_PHASE,
    PROBE_PROMPT_TOKENS,
    PROBE_RATELIMIT,
    PROBE_RATELIMIT_LIMIT,
    PROBE_REQUESTS,
    PROBE_RETRY_AFTER,
    PROBE_SKIPPED,
    PROBE_STATUS,
    PROBE_SUCCESS,
    PROBE_TOKENS_PER_CHUNK,
    PROBE_TOKENS_PER_SECOND,
    PROBE_TPOT,
    PROBE_TTF_ANSWER,
    PROBE_TTF_REASONING,
    PROBE_TTFT,
    RATELIMIT_KINDS,
    SKIP_REASONS,
    SLO_EVENTS,
    SLO_OBJECTIVE,
    SLO_OBJECTIVES,
    SLO_RESULTS,
    SLO_THRESHOLD,
    SLO_THRESHOLDS,
    STARTING,
)
from llmmon.metrics.family import Family
from llmmon.metrics.insight_families import INSIGHT_FAMILIES
from llmmon.metrics.snapshots import SnapshotCollector
from llmmon.probe.result import ERROR_REASONS

if TYPE_CHECKING:
    from llmmon.config.endpoints import SLO
    from llmmon.probe.load import LoadResult
    from llmmon.probe.result import ProbeResult
    from llmmon.probe.slo import SLOEvents, SLOState


class Metrics:
    """The live metrics of one daemon.

    ``registry`` (injected) holds everything, for tests and reference encoders; /metrics is
    rendered by ``exposition()``: the live families from their cached lines, then the
    collectors of ``base`` (samplers' snapshots, process_*, python_*) by prometheus-client.
    """

    def __init__(self, registry: CollectorRegistry, sampled: Iterable[Family] = ()) -> None:
        self.registry = registry
        self.base = CollectorRegistry(auto_describe=True)
        self.snapshots = SnapshotCollector(sampled)
        self.base.register(self.snapshots)
        registry.register(self.snapshots)
        # llmmon's own footprint: process_* (RSS, CPU, fds) and python_* families.
        for make in (ProcessCollector, PlatformCollector, GCCollector):
            collector = make(registry=self.base)
            registry.register(collector)
        self._live = {f: LiveFamily(f) for f in LIVE_FAMILIES + INSIGHT_FAMILIES}
        registry.register(FamiliesCollector(self._live.values()))
        self.gauge(BUILD_INFO).labels(__version__, platform.python_version()).set(1)

    def gauge(self, family: Family) -> LiveFamily:
        assert family.kind == "gauge"
        return self._live[family]

    def counter(self, family: Family) -> LiveFamily:
        assert family.kind == "counter"
        return self._live[family]

    def histogram(self, family: Family) -> LiveFamily:
        assert family.kind == "histogram"
        return self._live[family]

    def family(self, family: Family) -> LiveFamily:
        return self._live[family]

    def exposition(self, openmetrics: bool) -> bytes:
        return b"".join(self.exposition_parts(openmetrics))  # one allocation of the whole

    def exposition_parts(self, openmetrics: bool) -> list[bytes]:
        """/metrics in the text format, or OpenMetrics (whose `# EOF` the base encoder ends
        with, so llmmon's families come first), in parts."""
        parts = [part for family in self._live.values() for part in family.render(openmetrics)]
        encode = generate_openmetrics if openmetrics else generate_latest
        parts.append(encode(self.base))
        return parts

    # --- endpoints -----------------------------------------------------------------------

    def add_endpoint(self, labels: tuple[str, str, str], host: str, checked: list[str]) -> None:
        """Create the endpoint's counters and histograms at zero so rate() works from the start
        (``checked``: the prompts that have an expectation).

        Gauges appear with their first value: a gauge at 0 would claim a measurement."""
        self.gauge(ENDPOINT_INFO).labels(*labels, host).set(1)
        for family in PROBE_FAMILIES:
            if family.kind == "gauge" or family in ON_DEMAND:
                continue
            for extra in _label_values(family, checked):
                self._live[family].labels(*labels, *extra)

    def remove_endpoint(self, labels: tuple[str, str, str], host: str, prompts: list[str]
                        ) -> None:
        """Drop every series of an endpoint that left the configuration."""
        self.gauge(ENDPOINT_INFO).remove(*labels, host)
        for family in PROBE_FAMILIES:
            if family is ENDPOINT_INFO:
                continue
            metric = self._live[family]
            for extra in _label_values(family, prompts):
                try:
                    metric.remove(*labels, *extra)
                except KeyError:
                    pass  # never created

    def set_slo(self, labels: tuple[str, str, str], slo: SLO, state: SLOState, now: float,
                interval: float) -> None:
        """The endpoint's objectives and interval, and where its grace and run of failures
        stand."""
        self.gauge(PROBE_INTERVAL).labels(*labels).set(interval)
        targets = {"availability": slo.availability, "accuracy": slo.accuracy,
                   "ttft": slo.ttft_target, "itl": slo.itl_target}
        for objective, target in targets.items():
            self.gauge(SLO_OBJECTIVE).labels(*labels, objective).set(target)
        for objective, seconds in (("ttft", slo.ttft), ("itl", slo.itl)):
            self.gauge(SLO_THRESHOLD).labels(*labels, objective).set(seconds)
        self.set_slo_state(labels, state, now)

    def set_slo_state(self, labels: tuple[str, str, str], state: SLOState, now: float) -> None:
        self.gauge(CONSECUTIVE_FAILURES).labels(*labels).set(state.consecutive_failures)
        self.gauge(STARTING).labels(*labels).set(1 if state.starting(now) else 0)

    def record_slo(self, labels: tuple[str, str, str], events: SLOEvents) -> None:
        for (objective, result), n in events.items():
            self.counter(SLO_EVENTS).labels(*labels, objective, result).inc(n)

    def set_spent(self, labels: tuple[str, str, str], usd: float, tokens: int) -> None:
        """Today's spend against the daily budget: the alert compares like with like (a
        rolling 24 h against a budget that resets at UTC midnight would not)."""
        self.gauge(BUDGET_SPENT_USD).labels(*labels).set(usd)
        self.gauge(BUDGET_SPENT_TOKENS).labels(*labels).set(tokens)

    def set_budget(self, labels: tuple[str, str, str], usd: float | None, tokens: int | None
                   ) -> None:
        if usd is not None:
            self.gauge(BUDGET_USD).labels(*labels).set(usd)
        if tokens is not None:
            self.gauge(BUDGET_TOKENS).labels(*labels).set(tokens)

    def record_skip(self, labels: tuple[str, str, str], reason: str) -> None:
        self.counter(PROBE_SKIPPED).labels(*labels, reason).inc()

    def record_load(self, labels: tuple[str, str, str], load: LoadResult) -> None:
        self.gauge(LOAD_RPS).labels(*labels).set(load.requests_per_second)
        self.gauge(LOAD_TPS).labels(*labels).set(load.output_tokens_per_second)
        self.gauge(LOAD_CONCURRENCY).labels(*labels).set(load.concurrency)
        self.gauge(LOAD_ERRORS).labels(*labels).set(load.error_ratio)
        self.gauge(LOAD_DURATION).labels(*labels).set(load.duration)
        self.gauge(LOAD_LAST).labels(*labels).set(load.finished_unix)
        for reason, n in load.errors.items():
            self.counter(LOAD_ERROR_REASONS).labels(*labels, reason).inc(n)
        for percentile, value in zip(LOAD_PERCENTILES, load.ttft_quantiles, strict=True):
            if value is not None:
                self.gauge(LOAD_TTFT).labels(*labels, percentile).set(value)

    def record_probe(self, labels: tuple[str, str, str], result: ProbeResult) -> None:
        self.counter(PROBE_REQUESTS).labels(*labels, result.error or "success").inc()
        self.gauge(PROBE_SUCCESS).labels(*labels).set(1 if result.ok else 0)
        self.gauge(PROBE_STATUS).labels(*labels).set(result.status or 0)
        for phase, seconds in result.phases.items():
            self.gauge(PROBE_PHASE).labels(*labels, phase).set(seconds)
        if result.error:
            self.counter(PROBE_ERRORS).labels(*labels, result.error).inc()
        else:
            self.gauge(PROBE_LAST_SUCCESS).labels(*labels).set(result.finished_unix)
        if result.check_passed is not None:
            outcome = "pass" if result.check_passed else "fail"
            self.counter(PROBE_CHECKS).labels(*labels, result.prompt, outcome).inc()
        if result.cost_usd:
            self.counter(PROBE_COST).labels(*labels).inc(result.cost_usd)
        for kind, remaining in result.ratelimit_remaining.items():
            self.gauge(PROBE_RATELIMIT).labels(*labels, kind).set(remaining)
        for kind, limit in result.ratelimit_limit.items():
            self.gauge(PROBE_RATELIMIT_LIMIT).labels(*labels, kind).set(limit)
        if result.retry_after is not None:
            self.gauge(PROBE_RETRY_AFTER).labels(*labels).set(result.retry_after)
        if result.prompt_tokens:
            self.counter(PROBE_PROMPT_TOKENS).labels(*labels).inc(result.prompt_tokens)
        if result.cached_tokens:
            self.counter(PROBE_CACHED_TOKENS).labels(*labels).inc(result.cached_tokens)
        if result.output_tokens:
            self.counter(PROBE_OUTPUT_TOKENS).labels(*labels).inc(result.output_tokens)
        if result.ok:  # one rule: only probes that served a user feed the latency histograms
            self._observe_latencies(labels, result)

    def _observe_latencies(self, labels: tuple[str, str, str], result: ProbeResult) -> None:
        self._observe(PROBE_TTFT, labels, result.ttft)
        if result.time_to_first_reasoning is not None:
            self._observe(PROBE_TTF_REASONING, labels, result.time_to_first_reasoning)
            self._observe(PROBE_TTF_ANSWER, labels, result.time_to_first_answer)
        self._observe(PROBE_E2E, labels, result.e2e)
        self._observe(PROBE_TPOT, labels, result.tpot)
        self._observe(PROBE_TOKENS_PER_SECOND, labels, result.tokens_per_second)
        self._observe(PROBE_TOKENS_PER_CHUNK, labels, result.tokens_per_chunk)
        if result.tokens_per_chunk is not None:
            self.gauge(PROBE_COALESCED).labels(*labels).set(result.tokens_per_chunk > 1.0)
        itl = self.histogram(PROBE_ITL).labels(*labels)
        for gap in result.itl:
            itl.observe(gap)

    def _observe(self, family: Family, labels: tuple[str, ...], value: float | None) -> None:
        if value is not None:
            self.histogram(family).labels(*labels).observe(value)


def _label_values(family: Family, prompts: list[str]) -> list[tuple[str, ...]]:
    """The values of a probe family's labels beyond endpoint/provider/model."""
    extra = family.labels[len(PROBE_LABELS):]
    if family is PROBE_SKIPPED:
        return [(r,) for r in SKIP_REASONS]
    if family is PROBE_CHECKS:
        return [(p, r) for p in prompts for r in CHECK_RESULTS]
    if family is SLO_EVENTS:  # `starting` is an availability result only
        return [(o, r) for o in SLO_OBJECTIVES for r in SLO_RESULTS
                if r != "starting" or o == "availability"]
    if family is SLO_THRESHOLD:
        return [(o,) for o in SLO_THRESHOLDS]
    if family is SLO_OBJECTIVE:
        return [(o,) for o in SLO_OBJECTIVES]
    fixed = {("reason",): ERROR_REASONS, ("phase",): HTTP_PHASES, ("kind",): RATELIMIT_KINDS,
             ("percentile",): LOAD_PERCENTILES, ("outcome",): ("success", *ERROR_REASONS)}
    if extra in fixed:
        return [(v,) for v in fixed[extra]]
    return [()]
