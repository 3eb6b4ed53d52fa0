"""The arithmetic of ``llmmon bench``: percentiles, a step's summary, the knee and the
Pareto front of a sweep, and the per-request samples of each metric. Pure functions over the
records of ``model.py``: no I/O, standard library only. Comparisons (intervals, tests,
thresholds) are in ``inference.py``."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from statistics import fmean

from llmmon.bench.model import PERCENTILES, RequestRecord, ServerSample, Stats, StepSummary

Statistic = Callable[[Sequence[float]], float]

QUANTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}
LATENCIES = ("ttft", "itl", "tpot", "e2e")
LATENCY_METRICS = tuple(f"{m}_{p}" for m in LATENCIES for p in PERCENTILES)
RATE_METRICS = ("throughput", "rps")  # per second: compared relatively (%)
RATIO_METRICS = ("accuracy", "error_ratio", "goodput")  # 0..1: compared in points (pt)
METRICS = LATENCY_METRICS + RATE_METRICS + RATIO_METRICS


# --- percentiles ---------------------------------------------------------------------------

def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of already sorted values, interpolated linearly between the
    closest ranks at rank ``q * (n - 1)``: numpy's default ("linear") method."""
    if not ordered:
        raise ValueError("the percentile of no values")
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def stats(values: Sequence[float]) -> Stats:
    """p50/p90/p95/p99, mean and count of ``values``; ``Stats()`` (count 0) when empty."""
    if not values:
        return Stats()
    ordered = sorted(values)
    p50, p90, p95, p99 = (percentile(ordered, q) for q in QUANTILES.values())
    return Stats(p50=p50, p90=p90, p95=p95, p99=p99, mean=fmean(ordered), count=len(ordered))


def _mean_or_none(values: Sequence[float]) -> float | None:
    return fmean(values) if values else None


# --- a step's summary ----------------------------------------------------------------------

def summarize(records: Sequence[RequestRecord], *, mode: str, load: float, duration: float,
              ttft_objective: float, tpot_objective: float, cpu_seconds: float,
              server: ServerSample | None = None) -> StepSummary:
    """One step's figures from its requests.

    Latencies, throughput and token means count only the requests that succeeded (``ok``);
    ``goodput`` and ``error_ratio`` are shares of *all* requests, so a failure lowers goodput.
    ``accuracy`` reads every record with a check, failed ones included: a wrong answer is
    recorded as a failure (``check_failed``) and must still count against accuracy. A failed
    record without a reason is counted as ``unknown``. Rates are 0 when ``duration`` is not
    positive.

    ``client_saturated``: the client runs every stream on one asyncio event loop, i.e. on one
    core, so CPU time close to the wall time (90 %) means the loop was rarely idle and the
    client itself may have set the pace, not the server.
    """
    ok = [r for r in records if r.ok]
    failed = [r for r in records if not r.ok]
    total = len(records)
    output_tokens = sum(r.output_tokens or 0 for r in ok)
    checked = [r.check_passed for r in records if r.check_passed is not None]
    events = sum(r.events for r in records)
    return StepSummary(
        mode=mode, load=load, requests=total, succeeded=len(ok), duration=duration,
        requests_per_second=len(ok) / duration if duration > 0 else 0.0,
        output_tokens_per_second=output_tokens / duration if duration > 0 else 0.0,
        output_tokens_per_second_per_request=stats(_decode_rates(ok)),
        ttft=stats([r.ttft for r in ok if r.ttft is not None]),
        itl=stats([gap for r in ok for gap in r.itl]),
        tpot=stats([r.tpot for r in ok if r.tpot is not None]),
        e2e=stats([r.e2e for r in ok if r.e2e is not None]),
        errors=dict(Counter(r.error or "unknown" for r in failed)),
        error_ratio=len(failed) / total if total else 0.0,
        goodput=_goodput(records, ttft_objective, tpot_objective),
        achieved_concurrency=achieved_concurrency(records),
        accuracy=sum(checked) / len(checked) if checked else None,
        output_tokens=output_tokens,
        client_cpu_seconds=cpu_seconds,
        client_cpu_per_event_us=cpu_seconds * 1e6 / events if events else None,
        client_saturated=duration > 0 and cpu_seconds >= 0.9 * duration,
        server=server,
        prompt_tokens_mean=_mean_or_none([r.prompt_tokens for r in ok
                                          if r.prompt_tokens is not None]),
        output_tokens_mean=_mean_or_none([r.output_tokens for r in ok
                                          if r.output_tokens is not None]),
    )


def _decode_rates(ok: Sequence[RequestRecord]) -> list[float]:
    """Tokens per second after the first token, per request: the first token is TTFT's, so
    ``(tokens - 1) / (e2e - ttft)``; undefined for one token or no time after it."""
    rates = []
    for r in ok:
        if r.output_tokens is None or r.ttft is None or r.e2e is None:
            continue
        if r.output_tokens > 1 and r.e2e > r.ttft:
            rates.append((r.output_tokens - 1) / (r.e2e - r.ttft))
    return rates


def _goodput(records: Sequence[RequestRecord], ttft_objective: float,
             tpot_objective: float) -> float:
    """The share of all requests that succeeded within both objectives (inclusive). A request
    without a TPOT (a single token) is judged on TTFT alone; one without a TTFT is not good."""
    def good(r: RequestRecord) -> bool:
        return (r.ok and r.ttft is not None and r.ttft <= ttft_objective
                and (r.tpot is None or r.tpot <= tpot_objective))
    return sum(good(r) for r in records) / len(records) if records else 0.0


def achieved_concurrency(records: Sequence[RequestRecord]) -> float:
    """The time-averaged number of requests in flight over [first start, last end].

    Each record, failed or not, is in flight from ``start`` to ``start + e2e``; one without
    ``e2e`` (it failed before any timing) counts as ending at its start: it takes no time but
    still bounds the window. The integral of the in-flight count over the window is the sum of
    the requests' durations, so the average is that sum over the window's length."""
    if not records:
        return 0.0
    ends = [r.start + (r.e2e or 0.0) for r in records]
    window = max(ends) - min(r.start for r in records)
    busy = sum(end - r.start for r, end in zip(records, ends, strict=True))
    return busy / window if window > 0 else 0.0


# --- across a sweep ------------------------------------------------------------------------

def knee(steps: Sequence[StepSummary], goodput_target: float = 0.9) -> float | None:
    """The highest load meeting the goodput target, scanning loads upwards and stopping at
    the first step that misses it: a lucky step beyond a failing one is noise, not capacity.
    None when the lowest load already misses."""
    best = None
    for step in sorted(steps, key=lambda s: s.load):
        if step.goodput < goodput_target:
            break
        best = step.load
    return best


def pareto(steps: Sequence[StepSummary]) -> list[StepSummary]:
    """The steps no other step beats on both throughput (output tokens/s, higher is better)
    and latency (TTFT p90, lower is better), sorted by throughput. Steps without a TTFT (none
    succeeded) are left out; identical points are all kept."""
    measured = [s for s in steps if s.ttft.p90 is not None]

    def dominated(s: StepSummary) -> bool:
        return any(o.output_tokens_per_second >= s.output_tokens_per_second
                   and _p90(o) <= _p90(s)
                   and (o.output_tokens_per_second > s.output_tokens_per_second
                        or _p90(o) < _p90(s))
                   for o in measured)
    front = [s for s in measured if not dominated(s)]
    return sorted(front, key=lambda s: (s.output_tokens_per_second, s.load))


def _p90(step: StepSummary) -> float:
    assert step.ttft.p90 is not None  # pareto() keeps only steps with one
    return step.ttft.p90


# --- per-request samples of a metric -------------------------------------------------------

def metric_values(records: Sequence[RequestRecord], metric: str) -> list[float]:
    """The per-request samples a latency metric (``ttft_p95``, ``itl_mean``...) is computed
    from: TTFT, TPOT and E2E once per successful request, ITL once per gap."""
    _check_latency(metric)
    ok = [r for r in records if r.ok]
    kind = metric.split("_")[0]
    if kind == "itl":
        return [gap for r in ok for gap in r.itl]
    values = (getattr(r, kind) for r in ok)
    return [v for v in values if v is not None]


def metric_statistic(metric: str) -> Statistic:
    """The function of those samples that gives the metric: a percentile or the mean."""
    _check_latency(metric)
    name = metric.split("_")[1]
    if name == "mean":
        return fmean
    q = QUANTILES[name]
    return lambda values: percentile(sorted(values), q)


def _check_latency(metric: str) -> None:
    if metric not in LATENCY_METRICS:
        raise ValueError(f"{metric!r} is not a per-request latency metric "
                         f"({LATENCIES[0]}_p95 and the like): compare it from the steps")


def step_metric(step: StepSummary, metric: str) -> float | None:
    """A step's figure for any metric name of ``METRICS`` (None where it was not measured)."""
    if metric in LATENCY_METRICS:
        kind, name = metric.split("_")
        value: float | None = getattr(getattr(step, kind), name)
        return value
    named: dict[str, float | None] = {
        "throughput": step.output_tokens_per_second, "rps": step.requests_per_second,
        "accuracy": step.accuracy, "error_ratio": step.error_ratio, "goodput": step.goodput}
    if metric not in named:
        raise ValueError(f"unknown metric {metric!r}")
    return named[metric]

