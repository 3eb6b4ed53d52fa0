"""The arithmetic of ``llmmon bench`` and ``llmmon compare``: percentiles, a step's summary,
the knee and the Pareto front of a sweep, bootstrap confidence intervals, Fisher's exact test
and the ``--fail-on`` thresholds. Pure functions over the records of ``model.py``: no I/O,
standard library only."""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


# --- bootstrap -----------------------------------------------------------------------------

@dataclass
class Delta:
    """``b`` against ``a`` (``a`` the baseline) with a percentile bootstrap interval of the
    difference; the relative figures are None where ``a``'s statistic is 0."""

    a: float
    b: float
    delta: float  # b - a
    relative: float | None  # (b - a) / a
    low: float  # the interval of b - a
    high: float
    low_relative: float | None  # the interval of (b - a) / a
    high_relative: float | None

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def bootstrap_delta(a: Sequence[float], b: Sequence[float], statistic: Statistic, *,
                    resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> Delta:
    """The difference ``statistic(b) - statistic(a)`` with a percentile bootstrap interval.

    The samples are independent (two endpoints), so each is resampled on its own, with
    replacement, ``resamples`` times; the interval holds the central ``confidence`` of the
    resampled differences. ``random.Random(seed)`` makes it repeatable."""
    if not a or not b:
        raise ValueError("bootstrap needs values on both sides")
    if resamples < 1 or not 0 < confidence < 1:
        raise ValueError("bootstrap needs resamples >= 1 and 0 < confidence < 1")
    rng = random.Random(seed)
    a, b = list(a), list(b)
    stat_a, stat_b = statistic(a), statistic(b)
    deltas, ratios = [], []
    for _ in range(resamples):
        sa = statistic(rng.choices(a, k=len(a)))
        sb = statistic(rng.choices(b, k=len(b)))
        deltas.append(sb - sa)
        if sa != 0:
            ratios.append((sb - sa) / sa)
    low, high = _interval(deltas, confidence)
    # a resample whose statistic is 0 has no relative change: only when none did is the
    # relative interval the same resamples' as the absolute one
    low_rel, high_rel = _interval(ratios, confidence) if len(ratios) == resamples else (None,
                                                                                        None)
    return Delta(a=stat_a, b=stat_b, delta=stat_b - stat_a,
                 relative=(stat_b - stat_a) / stat_a if stat_a != 0 else None,
                 low=low, high=high, low_relative=low_rel, high_relative=high_rel)


def _interval(values: list[float], confidence: float) -> tuple[float, float]:
    ordered = sorted(values)
    tail = (1 - confidence) / 2
    return percentile(ordered, tail), percentile(ordered, 1 - tail)


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


# --- pass rates ----------------------------------------------------------------------------

@dataclass
class ProportionDelta:
    rate_a: float
    rate_b: float
    delta_points: float  # (rate_b - rate_a) in percentage points
    p_value: float


def proportion_delta(pass_a: int, n_a: int, pass_b: int, n_b: int) -> ProportionDelta:
    """Two pass rates side by side with the p-value of their difference."""
    if n_a == 0 or n_b == 0:
        raise ValueError("a pass rate needs at least one checked answer on each side")
    p_value = proportions_test(pass_a, n_a, pass_b, n_b)
    rate_a, rate_b = pass_a / n_a, pass_b / n_b
    return ProportionDelta(rate_a=rate_a, rate_b=rate_b, delta_points=(rate_b - rate_a) * 100,
                           p_value=p_value)


def proportions_test(pass_a: int, n_a: int, pass_b: int, n_b: int) -> float:
    """The two-sided p-value of Fisher's exact test on the 2x2 table of passes and failures.

    Exact rather than a z-test because answer checks are often few and near 0 % or 100 %,
    where the normal approximation is poor. With the margins fixed, A's passes follow a
    hypergeometric law; the p-value sums the probabilities of every table no likelier than
    the observed one. Probabilities are computed in log space (``lgamma``), which stays
    finite for any n, and "no likelier" allows a relative 1e-7 so that tables equally likely
    in exact arithmetic are not split by rounding: R's ``fisher.test`` and SciPy do the same.
    """
    if not (0 <= pass_a <= n_a and 0 <= pass_b <= n_b):
        raise ValueError("passes must lie between 0 and the number checked")
    size, passes = n_a + n_b, pass_a + pass_b
    lowest, highest = max(0, n_a - (size - passes)), min(passes, n_a)
    observed = _log_hypergeometric(pass_a, size, passes, n_a)
    total = 0.0
    for x in range(lowest, highest + 1):
        log_p = _log_hypergeometric(x, size, passes, n_a)
        if log_p <= observed + math.log1p(1e-7):
            total += math.exp(log_p)
    return min(1.0, total)


def _log_hypergeometric(x: int, size: int, passes: int, drawn: int) -> float:
    """log P(x passes among ``drawn`` of ``size`` of which ``passes`` pass)."""
    return (_log_comb(passes, x) + _log_comb(size - passes, drawn - x)
            - _log_comb(size, drawn))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


# --- --fail-on thresholds ------------------------------------------------------------------

_UNITS = {"%": 0.01, "pt": 0.01, "ms": 0.001, "s": 1.0}  # to a fraction, a ratio or seconds
_AMOUNT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-z%]*)")
_EPSILON = 1e-9  # 100 ms to 110 ms is "+10 %", not a float's hair above it


@dataclass(frozen=True)
class Threshold:
    """A ``--fail-on`` rule: ``metric`` must not move by more than ``amount`` in
    ``direction`` (+1 a rise, -1 a fall). ``unit`` is ``%`` (relative to the baseline),
    ``pt`` (absolute, on a 0..1 ratio) or ``s`` (absolute seconds; ``ms`` is converted);
    ``amount`` is in those terms: 0.1 for 10 % or 10 pt, 0.2 for 200 ms."""

    metric: str
    direction: int
    amount: float
    unit: str
    spec: str

    def breached(self, a: float, b: float, ci: tuple[float, float] | None = None) -> bool:
        """Whether the candidate ``b`` moved past the threshold from the baseline ``a``.

        The point estimate must cross the limit (strictly). With ``ci``, an interval of the
        change (of ``b - a`` or of ``(b - a) / a``: only its sign is read), the whole interval
        must also lie beyond 0 in the bad direction: a change the data cannot tell from noise
        does not fail a CI gate, however large its point estimate."""
        if self.direction * self._change(a, b) <= self.amount + _EPSILON:
            return False
        if ci is None:
            return True
        return ci[0] > 0 if self.direction > 0 else ci[1] < 0

    def breached_by(self, delta: Delta) -> bool:
        """``breached`` on a bootstrap result, its interval included."""
        return self.breached(delta.a, delta.b, (delta.low, delta.high))

    def _change(self, a: float, b: float) -> float:
        if self.unit != "%":
            return b - a
        if a == 0:  # any move from nothing is an unbounded relative change
            return 0.0 if b == a else math.copysign(math.inf, b - a)
        return (b - a) / a

    def describe(self) -> str:
        verb = "rises" if self.direction > 0 else "falls"
        shown = {"%": f"{self.amount * 100:g} %", "pt": f"{self.amount * 100:g} points",
                 "s": f"{self.amount * 1000:g} ms"}[self.unit]
        return f"{self.metric} {verb} by more than {shown}"


def parse_fail_on(spec: str) -> Threshold:
    """A ``Threshold`` from ``METRIC:CHANGE``, e.g. ``ttft_p95:+10%``, ``e2e_p50:+200ms``,
    ``throughput:-5%``, ``accuracy:-2pt``. ``+`` fails on a rise of more than the amount,
    ``-`` on a fall. Latency metrics take ``%``, ``ms`` or ``s``; ``throughput`` (output
    tokens/s) and ``rps`` take ``%``; ``accuracy``, ``error_ratio`` and ``goodput`` take
    ``pt`` (percentage points)."""
    metric, sep, change = spec.partition(":")
    metric, change = metric.strip().lower(), change.strip().lower()
    where = f"fail-on {spec!r}"
    if not sep:
        raise ValueError(f"{where}: expected METRIC:CHANGE, e.g. ttft_p95:+10%")
    if metric not in METRICS:
        raise ValueError(f"{where}: unknown metric {metric!r}; known: latencies "
                         f"{{{','.join(LATENCIES)}}}_{{{','.join(PERCENTILES)}}}, "
                         f"{', '.join(RATE_METRICS + RATIO_METRICS)}")
    if not change or change[0] not in "+-":
        raise ValueError(f"{where}: the change {change!r} needs a sign: "
                         "+ fails on a rise, - on a fall")
    match = _AMOUNT.fullmatch(change[1:].strip())
    if not match:
        raise ValueError(f"{where}: {change[1:]!r} is not a number with a unit")
    number, unit = match.groups()
    allowed = _allowed_units(metric)
    if unit not in allowed:
        given = f"not {unit!r}" if unit else "and needs one"
        raise ValueError(f"{where}: {metric} takes a change in {' or '.join(allowed)}, {given}")
    return Threshold(metric=metric, direction=1 if change[0] == "+" else -1,
                     amount=float(number) * _UNITS[unit], unit="s" if unit == "ms" else unit,
                     spec=spec.strip())


def _allowed_units(metric: str) -> tuple[str, ...]:
    if metric in LATENCY_METRICS:
        return ("%", "ms", "s")
    return ("%",) if metric in RATE_METRICS else ("pt",)
