"""Recording the insight families (``insight_families.py``) into a daemon's ``Metrics``:
evaluation runs, model information, cache probes, network against server time, energy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmmon.metrics.insight_families import (
    CACHE_ERRORS,
    CACHE_RATIO,
    CACHE_TOKENS,
    CACHE_TTFT,
    EVAL_DURATION,
    EVAL_ITEMS,
    EVAL_ITEMS_TOTAL,
    EVAL_LAST,
    EVAL_OUTCOMES,
    EVAL_RESULTS,
    EVAL_RUNS,
    EVAL_SCORE,
    INSIGHT_FAMILIES,
    LOAD_ENERGY,
    LOAD_JOULES_PER_TOKEN,
    LOAD_TOKENS_PER_JOULE,
    MODEL_CONTEXT,
    MODEL_INFO,
    MODEL_PARAMETERS,
    MODEL_REFRESHED,
    MODEL_SIZE,
    MODEL_VRAM,
    NETWORK_RTT,
    SERVER_TIME,
    TTFT_SHARE,
)
from llmmon.probe.modelinfo import quantization_label
from llmmon.probe.result import ERROR_REASONS

if TYPE_CHECKING:
    from llmmon.evals.runner import EvalRun
    from llmmon.metrics.recorder import Metrics
    from llmmon.probe.modelinfo import ModelInfo
    from llmmon.probe.result import ProbeResult

Labels = tuple[str, str, str]


def ttft_shares(ttft: float, rtt: float | None, server: dict[str, float]) -> dict[str, float]:
    """TTFT cut into one network round trip, the server's reported queue and prefill time,
    and the rest; each share capped by what is left, so they always add up to TTFT."""
    network = min(rtt or 0.0, ttft)
    reported = server.get("queue", 0.0) + server.get("prefill", 0.0)
    on_server = min(reported, ttft - network)
    return {"network": network, "server": on_server, "rest": ttft - network - on_server}


def record_network(m: Metrics, labels: Labels, result: ProbeResult) -> None:
    """The RTT and server timing of the last probe that had them, the TTFT split of the last
    successful one. A probe without them (a refused connection, a cut stream) keeps the
    previous figures: series that come and go with each fault would be gaps, not news."""
    if result.server_timing:  # the phases this server reports, all from one probe
        m.gauge(SERVER_TIME).remove_matching(*labels)
    if result.rtt is not None:
        m.gauge(NETWORK_RTT).labels(*labels).set(result.rtt)
    for phase, seconds in result.server_timing.items():
        m.gauge(SERVER_TIME).labels(*labels, phase).set(seconds)
    if result.ok and result.ttft is not None and (result.rtt is not None
                                                  or result.server_timing):
        for share, seconds in ttft_shares(result.ttft, result.rtt,
                                          result.server_timing).items():
            m.gauge(TTFT_SHARE).labels(*labels, share).set(seconds)


def add_eval(m: Metrics, labels: Labels, suite: str) -> None:
    """The suite's counters at zero, so rate() and increase() work from its first run."""
    for result in EVAL_RESULTS:
        m.counter(EVAL_ITEMS_TOTAL).labels(*labels, suite, result)
    for outcome in EVAL_OUTCOMES:
        m.counter(EVAL_RUNS).labels(*labels, suite, outcome)


def record_eval(m: Metrics, labels: Labels, run: EvalRun) -> None:
    m.counter(EVAL_RUNS).labels(*labels, run.suite, run.outcome).inc()
    if run.outcome == "skipped":
        return
    for result, n in run.counts().items():
        m.gauge(EVAL_ITEMS).labels(*labels, run.suite, result).set(n)
        m.counter(EVAL_ITEMS_TOTAL).labels(*labels, run.suite, result).inc(n)
    # A scorer absent from this run (its items all failed) keeps no stale score.
    m.gauge(EVAL_SCORE).remove_matching(*labels, run.suite)
    for scorer, value in run.scores().items():
        m.gauge(EVAL_SCORE).labels(*labels, run.suite, scorer).set(value)
    m.gauge(EVAL_DURATION).labels(*labels, run.suite).set(run.duration)
    m.gauge(EVAL_LAST).labels(*labels, run.suite).set(run.finished_unix)


def record_model(m: Metrics, labels: Labels, info: ModelInfo, now: float) -> None:
    from_server = info.source is not None and info.source != "model name"
    source = "server" if from_server else "name" if info.source else "none"
    m.gauge(MODEL_INFO).remove_matching(*labels)  # one series: a new quantisation replaces it
    m.gauge(MODEL_INFO).labels(*labels, quantization_label(info.quantization), source).set(1)
    for family, value in ((MODEL_PARAMETERS, info.parameters), (MODEL_SIZE, info.size_bytes),
                          (MODEL_VRAM, info.size_vram_bytes),
                          (MODEL_CONTEXT, info.context_length)):
        if value is not None:
            m.gauge(family).labels(*labels).set(value)
        else:
            m.gauge(family).remove_matching(*labels)
    if from_server:
        m.gauge(MODEL_REFRESHED).labels(*labels).set(now)


def add_cache(m: Metrics, labels: Labels) -> None:
    """The cache probe's error counters at zero: its first failure shows in increase()."""
    for reason in ERROR_REASONS:
        m.counter(CACHE_ERRORS).labels(*labels, reason)


def record_cache(m: Metrics, labels: Labels, cold: ProbeResult, warm: ProbeResult | None
                 ) -> None:
    """A failed pair is counted; the figures stay the last successful pair's."""
    failed = cold if not cold.ok else warm if warm is not None and not warm.ok else None
    if failed is not None:
        m.counter(CACHE_ERRORS).labels(*labels, failed.error or "protocol").inc()
        return
    assert warm is not None
    for family in (CACHE_TTFT, CACHE_TOKENS, CACHE_RATIO):  # this pair's, all of them
        m.gauge(family).remove_matching(*labels)
    for state, result in (("cold", cold), ("warm", warm)):
        if result.ttft is not None:
            m.gauge(CACHE_TTFT).labels(*labels, state).set(result.ttft)
        if result.cached_tokens is not None:
            m.gauge(CACHE_TOKENS).labels(*labels, state).set(result.cached_tokens)
    if cold.ttft and warm.ttft is not None:
        m.gauge(CACHE_RATIO).labels(*labels).set(warm.ttft / cold.ttft)


def record_energy(m: Metrics, labels: Labels, joules: float, output_tokens: int) -> None:
    remove_features(m, labels, energy=True)  # this burst's figures, all of them
    m.gauge(LOAD_ENERGY).labels(*labels).set(joules)
    if output_tokens:
        m.gauge(LOAD_JOULES_PER_TOKEN).labels(*labels).set(joules / output_tokens)
    if joules > 0:
        m.gauge(LOAD_TOKENS_PER_JOULE).labels(*labels).set(output_tokens / joules)


FEATURES = {
    "energy": (LOAD_ENERGY, LOAD_JOULES_PER_TOKEN, LOAD_TOKENS_PER_JOULE),
    "cache": (CACHE_TTFT, CACHE_RATIO, CACHE_TOKENS, CACHE_ERRORS),
    "model": (MODEL_INFO, MODEL_PARAMETERS, MODEL_SIZE, MODEL_VRAM, MODEL_CONTEXT,
              MODEL_REFRESHED),
}


def remove_features(m: Metrics, labels: Labels, **which: bool) -> None:
    """Drop an endpoint's series of the features named true (``cache=True``): a reload
    that turns one off leaves no stale figure behind."""
    for name, families in FEATURES.items():
        if which.get(name):
            for family in families:
                m.family(family).remove_matching(*labels)


def remove_endpoint(m: Metrics, labels: Labels) -> None:
    """Every insight series of an endpoint that left the configuration."""
    for family in INSIGHT_FAMILIES:
        m.family(family).remove_matching(*labels)


def remove_suite(m: Metrics, labels: Labels, suite: str) -> None:
    for family in INSIGHT_FAMILIES:
        if family.labels[3:4] == ("suite",):
            m.family(family).remove_matching(*labels, suite)
