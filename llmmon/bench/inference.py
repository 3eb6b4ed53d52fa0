"""The arithmetic of ``llmmon compare``: bootstrap confidence intervals of a difference,
Fisher's exact test of two pass rates, and the ``--fail-on`` thresholds. Pure functions,
standard library only."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from llmmon.bench.model import PERCENTILES
from llmmon.bench.stats import (
    LATENCIES,
    LATENCY_METRICS,
    METRICS,
    RATE_METRICS,
    RATIO_METRICS,
    Statistic,
    percentile,
)

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
