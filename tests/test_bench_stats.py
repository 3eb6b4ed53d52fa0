"""The arithmetic of bench and compare on literal inputs: percentiles (numpy's linear method),
a step's summary, the knee and the Pareto front, bootstrap intervals, Fisher's exact test and
the --fail-on thresholds. Expected values are worked out by hand (or are textbook values)."""

from __future__ import annotations

import math
import random
import re

import pytest

from llmmon.bench.inference import (
    Delta,
    Threshold,
    bootstrap_delta,
    parse_fail_on,
    proportion_delta,
    proportions_test,
)
from llmmon.bench.model import RequestRecord, ServerSample, Stats, StepSummary
from llmmon.bench.stats import (
    knee,
    metric_statistic,
    metric_values,
    pareto,
    percentile,
    stats,
    step_metric,
    summarize,
)

approx = pytest.approx


def rec(start: float = 0.0, e2e: float | None = 1.0, *, ok: bool = True,
        error: str | None = None, ttft: float | None = 0.1, tpot: float | None = 0.01,
        itl: tuple[float, ...] = (), out: int | None = None, prompt: int | None = None,
        check: bool | None = None, events: int = 0) -> RequestRecord:
    return RequestRecord(start=start, ok=ok, error=error, ttft=ttft, itl=list(itl), tpot=tpot,
                         e2e=e2e, output_tokens=out, prompt_tokens=prompt, check_passed=check,
                         events=events)


def summary(records: list[RequestRecord], *, duration: float = 4.0, cpu: float = 0.0,
            ttft_objective: float = 0.3, tpot_objective: float = 0.05) -> StepSummary:
    return summarize(records, mode="concurrency", load=2, duration=duration,
                     ttft_objective=ttft_objective, tpot_objective=tpot_objective,
                     cpu_seconds=cpu)


def step(load: float, *, goodput: float = 1.0, tput: float = 0.0,
         p90: float | None = None) -> StepSummary:
    return StepSummary(
        mode="concurrency", load=load, requests=10, succeeded=10, duration=1.0,
        requests_per_second=10.0, output_tokens_per_second=tput,
        output_tokens_per_second_per_request=Stats(), ttft=Stats(p90=p90), itl=Stats(),
        tpot=Stats(), e2e=Stats(), errors={}, error_ratio=0.0, goodput=goodput,
        achieved_concurrency=load, accuracy=None, output_tokens=0, client_cpu_seconds=0.0,
        client_cpu_per_event_us=None, client_saturated=False)


# --- percentiles ---------------------------------------------------------------------------

def test_percentiles_interpolate_linearly_between_closest_ranks() -> None:
    # rank q*(n-1) over 1,2,3,4: p90 at rank 2.7 -> 3 + 0.7, p95 at 2.85, p99 at 2.97
    s = stats([4.0, 1.0, 3.0, 2.0])  # unsorted on purpose
    assert (s.p50, s.p90, s.p95, s.p99) == (approx(2.5), approx(3.7), approx(3.85),
                                           approx(3.97))
    assert s.mean == approx(2.5)
    assert s.count == 4


def test_a_tail_percentile_interpolates_toward_the_outlier() -> None:
    s = stats([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 1000])
    assert s.p50 == 60  # rank 5, exactly a value
    assert s.p90 == approx(100)  # rank 9
    assert s.p95 == approx(550)  # rank 9.5: halfway from 100 to 1000
    assert s.p99 == approx(910)  # rank 9.9
    assert s.mean == approx(1550 / 11)


def test_one_value_is_every_percentile_and_none_is_empty_stats() -> None:
    assert stats([5.0]) == Stats(p50=5.0, p90=5.0, p95=5.0, p99=5.0, mean=5.0, count=1)
    assert stats([]) == Stats()
    assert stats([]).count == 0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_percentile_reads_sorted_values_at_the_edges() -> None:
    assert percentile([1.0, 2.0, 3.0], 0.0) == 1.0
    assert percentile([1.0, 2.0, 3.0], 1.0) == 3.0
    assert percentile([1.0, 2.0, 3.0], 0.25) == approx(1.5)


# --- summarize -----------------------------------------------------------------------------

def mixed_step() -> list[RequestRecord]:
    return [
        # good: TTFT and TPOT within 0.3 s and 0.05 s
        rec(0.0, 1.0, ttft=0.1, tpot=0.02, itl=(0.02, 0.03), out=10, prompt=100, check=True,
            events=10),
        # served but too slow to the first token: not good
        rec(0.5, 1.5, ttft=0.5, tpot=0.01, itl=(0.01,), out=20, check=True, events=20),
        # failed after a first token: nothing of it counts in latencies or tokens
        rec(1.0, 1.0, ok=False, error="timeout", ttft=0.2, itl=(0.9,), out=5, prompt=1000,
            events=10),
        # a wrong answer: a failure, and counted against accuracy; no e2e
        rec(3.0, None, ok=False, error="check_failed", ttft=None, check=False),
    ]


def test_summary_counts_requests_errors_and_rates_from_successes() -> None:
    s = summary(mixed_step(), duration=4.0)
    assert (s.mode, s.load, s.duration) == ("concurrency", 2, 4.0)
    assert (s.requests, s.succeeded) == (4, 2)
    assert s.errors == {"timeout": 1, "check_failed": 1}
    assert s.error_ratio == 0.5
    assert s.output_tokens == 30  # the failed request's 5 are not output
    assert s.requests_per_second == approx(0.5)
    assert s.output_tokens_per_second == approx(7.5)


def test_summary_latencies_cover_successful_requests_only() -> None:
    s = summary(mixed_step())
    assert (s.ttft.count, s.ttft.mean, s.ttft.p50) == (2, approx(0.3), approx(0.3))
    assert (s.tpot.count, s.tpot.mean) == (2, approx(0.015))
    assert (s.e2e.count, s.e2e.mean) == (2, approx(1.25))
    # every gap of every successful request: 0.01, 0.02, 0.03
    assert (s.itl.count, s.itl.p50, s.itl.mean) == (3, approx(0.02), approx(0.02))


def test_summary_decode_rate_per_request_excludes_the_first_token() -> None:
    s = summary(mixed_step())
    # (10 - 1) / (1.0 - 0.1) = 10 and (20 - 1) / (1.5 - 0.5) = 19
    assert s.output_tokens_per_second_per_request.count == 2
    assert s.output_tokens_per_second_per_request.p50 == approx(14.5)
    assert s.output_tokens_per_second_per_request.p99 == approx(10 + 9 * 0.99)


def test_decode_rate_skips_one_token_and_no_time_after_it() -> None:
    s = summary([rec(e2e=1.0, ttft=0.5, out=1), rec(e2e=0.5, ttft=0.5, out=9),
                 rec(e2e=1.0, ttft=None, out=9), rec(e2e=1.0, ttft=0.5, out=2)])
    assert s.output_tokens_per_second_per_request.count == 1
    assert s.output_tokens_per_second_per_request.mean == approx(2.0)  # 1 token in 0.5 s


def test_goodput_is_a_share_of_all_requests() -> None:
    assert summary(mixed_step()).goodput == 0.25  # one good of four


@pytest.mark.parametrize(("record", "good"), [
    (rec(ttft=0.3, tpot=0.05), True),  # both objectives are inclusive
    (rec(ttft=0.31, tpot=0.01), False),
    (rec(ttft=0.1, tpot=0.051), False),
    (rec(ttft=0.1, tpot=None), True),  # one token: judged on TTFT alone
    (rec(ttft=None, tpot=0.01), False),  # no TTFT measured: not shown to be good
    (rec(ok=False, error="timeout", ttft=0.1, tpot=0.01), False),
])
def test_goodput_objectives(record: RequestRecord, good: bool) -> None:
    assert summary([record, rec(ttft=9.0)]).goodput == (0.5 if good else 0.0)


def test_achieved_concurrency_of_two_overlapping_requests() -> None:
    # [0, 2] and [1, 3]: two in flight for 1 s of 3 -> (1 + 2 + 1) / 3
    assert summary([rec(0.0, 2.0), rec(1.0, 2.0)]).achieved_concurrency == approx(4 / 3)
    # back to back, never overlapping: one at a time
    assert summary([rec(0.0, 1.0), rec(1.0, 1.0)]).achieved_concurrency == approx(1.0)


def test_achieved_concurrency_counts_failures_and_untimed_ends_at_their_start() -> None:
    failed = rec(1.0, 2.0, ok=False, error="timeout")
    assert summary([rec(0.0, 2.0), failed]).achieved_concurrency == approx(4 / 3)
    # no e2e: in flight for no time, but it stretches the window to 5 s
    untimed = rec(5.0, None, ok=False, error="connect")
    assert summary([rec(0.0, 2.0), rec(1.0, 2.0), untimed]).achieved_concurrency == approx(0.8)
    # the mixed step: ends 1.0, 2.0, 2.0, 3.0 -> 3.5 s busy over a 3 s window
    assert summary(mixed_step()).achieved_concurrency == approx(3.5 / 3)
    assert summary([]).achieved_concurrency == 0.0


def test_accuracy_reads_every_checked_answer_failures_included() -> None:
    assert summary(mixed_step()).accuracy == approx(2 / 3)
    assert summary([rec(), rec(check=False)]).accuracy == 0.0
    assert summary([rec(), rec()]).accuracy is None  # nothing checked


def test_client_cpu_per_event_counts_every_records_events() -> None:
    s = summary(mixed_step(), cpu=0.004, duration=4.0)  # 40 events in all
    assert s.client_cpu_seconds == 0.004
    assert s.client_cpu_per_event_us == approx(100.0)
    assert s.client_saturated is False
    assert summary([rec()], cpu=0.5).client_cpu_per_event_us is None


def test_client_saturated_from_ninety_percent_of_one_core() -> None:
    assert summary([rec()], cpu=3.6, duration=4.0).client_saturated is True
    assert summary([rec()], cpu=3.5, duration=4.0).client_saturated is False
    zero = summary([rec(out=4)], cpu=0.1, duration=0.0)
    assert zero.client_saturated is False
    assert (zero.requests_per_second, zero.output_tokens_per_second) == (0.0, 0.0)


def test_token_means_over_successes_that_report_them() -> None:
    s = summary(mixed_step())
    assert s.prompt_tokens_mean == 100  # the failure's 1000 and the unreported are left out
    assert s.output_tokens_mean == 15
    empty = summary([rec()])
    assert (empty.prompt_tokens_mean, empty.output_tokens_mean) == (None, None)


def test_summary_of_no_requests_and_reasonless_failures() -> None:
    s = summary([])
    assert (s.requests, s.error_ratio, s.goodput, s.ttft) == (0, 0.0, 0.0, Stats())
    assert summary([rec(ok=False)]).errors == {"unknown": 1}


def test_summary_carries_the_server_sample() -> None:
    server = ServerSample(queue_mean=1.5, samples=3)
    s = summarize([rec()], mode="rate", load=5.0, duration=1.0, ttft_objective=1,
                  tpot_objective=1, cpu_seconds=0, server=server)
    assert (s.server, s.mode, s.load) == (server, "rate", 5.0)


# --- knee and Pareto -----------------------------------------------------------------------

def test_knee_is_the_last_load_before_the_first_miss() -> None:
    sweep = [step(16, goodput=0.95), step(1, goodput=0.99), step(8, goodput=0.5),
             step(2, goodput=0.95), step(4, goodput=0.9)]
    # 4 meets 0.9 exactly; 8 misses; 16's recovery past the dip does not count
    assert knee(sweep) == 4
    assert knee(sweep, goodput_target=0.96) == 1
    assert knee(sweep, goodput_target=0.5) == 16


def test_no_knee_when_the_lowest_load_misses() -> None:
    assert knee([step(1, goodput=0.8), step(2, goodput=0.95)]) is None
    assert knee([]) is None


def test_pareto_front_of_throughput_against_ttft_p90() -> None:
    sweep = [step(8, tput=250, p90=0.5), step(4, tput=170, p90=0.3), step(1, tput=100, p90=0.1),
             step(16, tput=240, p90=0.9), step(32, tput=250, p90=0.6), step(2, tput=180, p90=0.15),
             step(64, tput=0, p90=None)]
    # 4 is beaten by 2 on both; 16 by 8; 32 ties 8 on throughput but is slower; 64 has no TTFT
    assert [s.load for s in pareto(sweep)] == [1, 2, 8]


def test_pareto_keeps_identical_points_and_equal_latency_ties() -> None:
    assert [s.load for s in pareto([step(1, tput=10, p90=0.2),
                                    step(2, tput=10, p90=0.2)])] == [1, 2]
    # same latency, more throughput: the slower-throughput one is dominated
    assert [s.load for s in pareto([step(1, tput=10, p90=0.2),
                                    step(2, tput=12, p90=0.2)])] == [2]
    assert pareto([]) == []


# --- bootstrap -----------------------------------------------------------------------------

def gauss(seed: int, mu: float, n: int = 400) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mu, 0.05) for _ in range(n)]


@pytest.mark.parametrize("metric", ["ttft_mean", "ttft_p50", "ttft_p95"])
def test_bootstrap_finds_a_ten_percent_difference(metric: str) -> None:
    d = bootstrap_delta(gauss(1, 1.0), gauss(2, 1.1), metric_statistic(metric))
    assert d.excludes_zero()
    assert d.low > 0
    assert d.relative == approx(0.10, abs=0.015)
    assert d.delta == approx(d.b - d.a)
    assert d.low_relative is not None
    assert d.high_relative is not None
    assert 0 < d.low_relative < d.relative < d.high_relative


def test_bootstrap_sees_a_fall_as_negative() -> None:
    d = bootstrap_delta(gauss(1, 1.1), gauss(2, 1.0), metric_statistic("ttft_mean"))
    assert d.high < 0
    assert d.excludes_zero()
    assert d.relative is not None
    assert d.relative < 0


def test_bootstrap_of_one_distribution_includes_zero() -> None:
    both = gauss(3, 1.0, n=800)
    d = bootstrap_delta(both[:400], both[400:], metric_statistic("ttft_p95"))
    assert d.low < 0 < d.high
    assert not d.excludes_zero()


def test_bootstrap_is_repeatable_by_seed() -> None:
    a, b = gauss(1, 1.0, n=50), gauss(2, 1.0, n=50)
    mean = metric_statistic("ttft_mean")
    assert bootstrap_delta(a, b, mean, seed=7) == bootstrap_delta(a, b, mean, seed=7)
    assert bootstrap_delta(a, b, mean, seed=7) != bootstrap_delta(a, b, mean, seed=8)


def test_bootstrap_point_estimates_and_a_degenerate_interval() -> None:
    d = bootstrap_delta([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], metric_statistic("e2e_mean"),
                        resamples=50)
    assert (d.a, d.b, d.delta, d.relative) == (2.0, 3.0, 1.0, 0.5)
    # constant samples resample to themselves: the interval is the point
    d = bootstrap_delta([2.0] * 5, [3.0] * 5, metric_statistic("e2e_p90"), resamples=20)
    assert d == Delta(a=2.0, b=3.0, delta=1.0, relative=0.5, low=1.0, high=1.0,
                      low_relative=0.5, high_relative=0.5)


def test_bootstrap_relative_figures_need_a_nonzero_baseline() -> None:
    d = bootstrap_delta([0.0, 0.0], [1.0, 1.0], metric_statistic("itl_mean"), resamples=10)
    assert (d.relative, d.low_relative, d.high_relative) == (None, None, None)
    assert (d.low, d.high) == (1.0, 1.0)


def test_bootstrap_interval_widens_with_confidence() -> None:
    a, b = gauss(1, 1.0, n=100), gauss(2, 1.0, n=100)
    mean = metric_statistic("ttft_mean")
    narrow = bootstrap_delta(a, b, mean, confidence=0.5)
    wide = bootstrap_delta(a, b, mean, confidence=0.99)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_bootstrap_refuses_empty_samples_and_bad_settings() -> None:
    mean = metric_statistic("ttft_mean")
    with pytest.raises(ValueError, match="both sides"):
        bootstrap_delta([], [1.0], mean)
    with pytest.raises(ValueError, match="both sides"):
        bootstrap_delta([1.0], [], mean)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_delta([1.0], [1.0], mean, confidence=1.0)
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_delta([1.0], [1.0], mean, resamples=0)


# --- metric samples and statistics ---------------------------------------------------------

def test_metric_values_are_per_successful_request_and_per_gap() -> None:
    records = [rec(ttft=0.1, tpot=0.01, e2e=1.0, itl=(0.01, 0.02)),
               rec(ttft=0.2, tpot=None, e2e=2.0, itl=(0.03,)),
               rec(ok=False, error="timeout", ttft=9.0, tpot=9.0, e2e=9.0, itl=(9.0,))]
    assert metric_values(records, "ttft_p95") == [0.1, 0.2]
    assert metric_values(records, "tpot_mean") == [0.01]
    assert metric_values(records, "e2e_p50") == [1.0, 2.0]
    assert metric_values(records, "itl_p99") == [0.01, 0.02, 0.03]


def test_metric_statistic_is_the_named_percentile_or_mean() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert metric_statistic("ttft_p50")(values) == approx(2.5)
    assert metric_statistic("itl_p90")(values) == approx(3.7)
    assert metric_statistic("tpot_p95")(values) == approx(3.85)
    assert metric_statistic("e2e_p99")(values) == approx(3.97)
    assert metric_statistic("e2e_mean")([1.0, 2.0, 6.0]) == approx(3.0)


@pytest.mark.parametrize("metric", ["throughput", "accuracy", "ttft_p97", "ttft"])
def test_only_latency_metrics_have_per_request_samples(metric: str) -> None:
    with pytest.raises(ValueError, match="not a per-request latency metric"):
        metric_values([rec()], metric)
    with pytest.raises(ValueError, match="not a per-request latency metric"):
        metric_statistic(metric)


def test_step_metric_reads_any_metric_of_a_step() -> None:
    s = summary(mixed_step(), duration=4.0)
    assert step_metric(s, "ttft_mean") == approx(0.3)
    assert step_metric(s, "itl_p50") == approx(0.02)
    assert step_metric(s, "throughput") == approx(7.5)
    assert step_metric(s, "rps") == approx(0.5)
    assert step_metric(s, "accuracy") == approx(2 / 3)
    assert step_metric(s, "error_ratio") == 0.5
    assert step_metric(s, "goodput") == 0.25
    assert step_metric(summary([]), "ttft_p95") is None
    with pytest.raises(ValueError, match="unknown metric 'latency'"):
        step_metric(s, "latency")


# --- Fisher's exact test -------------------------------------------------------------------

def test_fisher_lady_tasting_tea() -> None:
    # tables with 3, 1 (16/70 each), 4, 0 (1/70 each) are no likelier than the observed 3
    assert proportions_test(3, 4, 1, 4) == approx(34 / 70)
    assert proportions_test(3, 4, 1, 4) == approx(0.4857, abs=1e-4)


def test_fisher_known_values() -> None:
    assert proportions_test(0, 10, 10, 10) == approx(2 / math.comb(20, 10))  # 1.08e-5
    assert proportions_test(8, 10, 1, 6) == approx(0.034965035, rel=1e-6)
    assert proportions_test(1, 10, 11, 14) == approx(0.002759456, rel=1e-6)
    assert proportions_test(7, 20, 12, 20) == approx(0.2049272, rel=1e-6)


def test_fisher_counts_tables_exactly_as_likely_despite_rounding() -> None:
    # 7 answers, 2 passes, 2 drawn for A: P(0) = P(1) = 10/21, P(2) = 1/21. The observed 0
    # ties with 1, which lgamma rounds a hair differently: without the tolerance, 11/21
    assert proportions_test(0, 2, 2, 5) == approx(1.0)


def test_fisher_is_symmetric_and_one_for_equal_rates() -> None:
    assert proportions_test(1, 4, 3, 4) == approx(proportions_test(3, 4, 1, 4))
    assert proportions_test(5, 5, 5, 5) == 1.0
    assert proportions_test(2, 4, 2, 4) == approx(1.0)  # every table counts
    assert proportions_test(0, 0, 3, 4) == 1.0  # nothing checked on one side


def test_fisher_stays_finite_for_large_counts() -> None:
    assert proportions_test(900, 1000, 880, 1000) == approx(0.1744071, rel=1e-5)
    assert proportions_test(40000, 100000, 41000, 100000) == approx(5.34933e-6, rel=1e-4)


@pytest.mark.parametrize("counts", [(5, 4, 1, 4), (-1, 4, 1, 4), (1, 4, 5, 4)])
def test_fisher_refuses_impossible_counts(counts: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError, match="between 0 and the number checked"):
        proportions_test(*counts)


def test_proportion_delta_in_points() -> None:
    d = proportion_delta(45, 50, 40, 50)
    assert (d.rate_a, d.rate_b) == (0.9, 0.8)
    assert d.delta_points == approx(-10.0)
    assert d.p_value == approx(0.2623395, rel=1e-5)
    with pytest.raises(ValueError, match="at least one checked answer"):
        proportion_delta(0, 0, 1, 2)


# --- --fail-on -----------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "metric", "direction", "amount", "unit"), [
    ("ttft_p95:+10%", "ttft_p95", 1, 0.10, "%"),
    ("itl_p99:+5%", "itl_p99", 1, 0.05, "%"),
    ("e2e_p50:+200ms", "e2e_p50", 1, 0.2, "s"),
    ("tpot_mean:+1.5s", "tpot_mean", 1, 1.5, "s"),
    ("throughput:-5%", "throughput", -1, 0.05, "%"),
    ("rps:-5%", "rps", -1, 0.05, "%"),
    ("accuracy:-2pt", "accuracy", -1, 0.02, "pt"),
    ("error_ratio:+1pt", "error_ratio", 1, 0.01, "pt"),
    ("goodput:-5pt", "goodput", -1, 0.05, "pt"),
    (" TTFT_P90 : + 2.5 % ", "ttft_p90", 1, 0.025, "%"),
])
def test_parse_fail_on(spec: str, metric: str, direction: int, amount: float,
                       unit: str) -> None:
    t = parse_fail_on(spec)
    assert (t.metric, t.direction, t.amount, t.unit) == (metric, direction, approx(amount), unit)
    assert t.spec == spec.strip()


@pytest.mark.parametrize(("spec", "message"), [
    ("ttft_p95", "expected METRIC:CHANGE"),
    ("ttft_p97:+10%", "unknown metric 'ttft_p97'"),
    ("latency:+10%", "unknown metric 'latency'"),
    ("ttft_p95:10%", "'10%' needs a sign"),
    ("ttft_p95:", "'' needs a sign"),
    ("ttft_p95:+ten%", "'ten%' is not a number with a unit"),
    ("ttft_p95:+-10%", "'-10%' is not a number with a unit"),
    ("ttft_p95:+10", "ttft_p95 takes a change in % or ms or s, and needs one"),
    ("ttft_p95:+10pt", "ttft_p95 takes a change in % or ms or s, not 'pt'"),
    ("accuracy:-2%", "accuracy takes a change in pt, not '%'"),
    ("throughput:-5ms", "throughput takes a change in %, not 'ms'"),
    ("rps:-5tok", "rps takes a change in %, not 'tok'"),
])
def test_parse_fail_on_names_the_bad_part(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        parse_fail_on(spec)
    assert f"fail-on {spec!r}" in str(info.value)


def test_a_rise_threshold_fails_only_past_its_limit() -> None:
    t = parse_fail_on("ttft_p95:+10%")
    assert not t.breached(0.100, 0.110)  # exactly 10 %: not more than
    assert t.breached(0.100, 0.111)
    assert not t.breached(0.100, 0.050)  # a fall is no rise
    assert t.breached(0.0, 0.001)  # any rise from nothing is unbounded
    assert not t.breached(0.0, 0.0)


def test_a_fall_threshold_fails_only_past_its_limit() -> None:
    t = parse_fail_on("throughput:-5%")
    assert t.breached(100.0, 94.0)
    assert not t.breached(100.0, 95.0)
    assert not t.breached(100.0, 96.0)
    assert not t.breached(100.0, 120.0)


def test_absolute_thresholds_in_seconds_and_points() -> None:
    e2e = parse_fail_on("e2e_p50:+200ms")
    assert not e2e.breached(1.0, 1.2)
    assert e2e.breached(1.0, 1.25)
    assert not e2e.breached(10.0, 10.15)  # absolute: 1.5 % of 10 s is still 150 ms
    accuracy = parse_fail_on("accuracy:-2pt")
    assert not accuracy.breached(0.90, 0.88)
    assert accuracy.breached(0.90, 0.87)
    assert not accuracy.breached(0.90, 0.99)
    errors = parse_fail_on("error_ratio:+1pt")
    assert errors.breached(0.0, 0.02)
    assert not errors.breached(0.05, 0.055)


def test_a_confidence_interval_across_zero_does_not_fail_the_gate() -> None:
    rise = parse_fail_on("ttft_p95:+10%")
    assert not rise.breached(1.0, 1.2, ci=(-0.05, 0.4))
    assert rise.breached(1.0, 1.2, ci=(0.01, 0.4))
    assert not rise.breached(1.0, 1.05, ci=(0.01, 0.1))  # significant but within the limit
    fall = parse_fail_on("throughput:-5%")
    assert fall.breached(100.0, 90.0, ci=(-15.0, -2.0))
    assert not fall.breached(100.0, 90.0, ci=(-15.0, 1.0))


def test_breached_by_a_bootstrap_delta() -> None:
    t = parse_fail_on("ttft_p95:+5%")
    significant = bootstrap_delta(gauss(1, 1.0), gauss(2, 1.1), metric_statistic("ttft_p95"))
    assert t.breached_by(significant)
    noise = Delta(a=1.0, b=1.2, delta=0.2, relative=0.2, low=-0.1, high=0.5,
                  low_relative=-0.1, high_relative=0.5)
    assert not t.breached_by(noise)


def test_thresholds_describe_themselves() -> None:
    assert parse_fail_on("ttft_p95:+10%").describe() == "ttft_p95 rises by more than 10 %"
    assert parse_fail_on("accuracy:-2pt").describe() == "accuracy falls by more than 2 points"
    assert parse_fail_on("e2e_p50:+200ms").describe() == "e2e_p50 rises by more than 200 ms"
    assert parse_fail_on("e2e_p50:+1.5s").describe() == "e2e_p50 rises by more than 1500 ms"
    assert parse_fail_on("rps:-5%") == Threshold(metric="rps", direction=-1, amount=0.05,
                                                 unit="%", spec="rps:-5%")
