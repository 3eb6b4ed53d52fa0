"""Pure logic on literal inputs: no network, no sleeps, no processes.

Each test pins one rule that a one-line change of the production code would break (the CPU
busy share, process matching, DNS out of connect, the render cache, the bcrypt cache, the
first run's delay, the budget's UTC day, same-read ITL gaps, the answer's last number)."""

from __future__ import annotations

import base64
import re
import ssl
from collections import namedtuple
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bcrypt
import pytest
import trustme
from prometheus_client import CollectorRegistry

import llmmon.daemon.auth as auth
from llmmon.config import Budget, Expect
from llmmon.daemon.auth import WebConfig, WebSecurity
from llmmon.daemon.jobs import Job, Jobs
from llmmon.metrics.exposition import LiveFamily
from llmmon.metrics.family import Family
from llmmon.metrics.recorder import Metrics
from llmmon.probe.checks import passes
from llmmon.probe.cost import DailySpend
from llmmon.probe.result import ProbeResult, StreamTiming, apply_events
from llmmon.probe.trace import split_phases
from llmmon.probe.transport import ssl_context
from llmmon.providers.base import Delta, Usage
from llmmon.samplers.host import busy_ratio
from llmmon.samplers.process import ProcessTarget, matches
from tests.conftest import make_endpoint

# --- 1. host CPU busy share -------------------------------------------------------------

CPUTimes = namedtuple(
    "CPUTimes",
    "user nice system idle iowait irq softirq steal guest guest_nice",
)


def test_busy_ratio_is_the_busy_share_with_iowait_idle_and_guest_not_counted_twice() -> None:
    """busy_ratio gives the busy share (1 - idle+iowait share), guest time left out of total."""
    before = CPUTimes(user=100, nice=5, system=50, idle=800, iowait=40, irq=1, softirq=2,
                      steal=0, guest=10, guest_nice=3)
    # +15 user, +10 system (busy 25); +60 idle, +15 iowait (idle 75); +40 guest (already in
    # user, must not widen the total).
    after = CPUTimes(user=115, nice=5, system=60, idle=860, iowait=55, irq=1, softirq=2,
                     steal=0, guest=50, guest_nice=3)
    assert busy_ratio(before, after) == 0.25


def test_busy_ratio_all_busy_and_no_elapsed_time() -> None:
    """busy_ratio is 1.0 when no idle time passed and None when no time passed at all."""
    before = CPUTimes(10, 0, 10, 100, 0, 0, 0, 0, 0, 0)
    after = CPUTimes(30, 0, 20, 100, 0, 0, 0, 0, 0, 0)
    assert busy_ratio(before, after) == 1.0
    assert busy_ratio(after, after) is None


# --- 2. process target matching -----------------------------------------------------------

def test_matches_by_cmdline_substring() -> None:
    """A cmdline target matches a command line containing the substring, and nothing else."""
    target = ProcessTarget(name="vllm", cmdline="vllm.entrypoints")
    line = "python -m vllm.entrypoints.openai.api_server --port 8000"
    assert matches(target, None, line, "python")
    assert not matches(target, None, "python -m sglang.launch_server", "python")
    # the name is no substitute for the command line
    assert not matches(target, None, "", "vllm.entrypoints")


def test_matches_by_cmdline_regex() -> None:
    """A cmdline_regex target matches by re.search on the joined command line only."""
    target = ProcessTarget(name="llama", cmdline_regex=r"llama-server\b.*--port 80\d\d")
    regex = re.compile(r"llama-server\b.*--port 80\d\d")
    assert matches(target, regex, "/usr/bin/llama-server -m m.gguf --port 8080", "llama-server")
    assert not matches(target, regex, "/usr/bin/llama-server -m m.gguf --port 9090",
                       "llama-server")


def test_matches_by_process_name_only_when_equal() -> None:
    """A process_name target matches a process of exactly that name, not any other name."""
    target = ProcessTarget(name="ollama", process_name="ollama")
    assert matches(target, None, "/usr/local/bin/ollama serve", "ollama")
    assert not matches(target, None, "/usr/local/bin/ollama serve", "python3")
    assert not matches(target, None, "ollama", None)
    assert not matches(target, None, "ollama", "ollama-runner")


# --- 3. HTTP phases -----------------------------------------------------------------------

def test_split_phases_takes_dns_out_of_connect() -> None:
    """With a timed DNS lookup, connect is the TCP span minus DNS and dns is its own phase."""
    spans: dict[str, float | None] = {"connect": 0.030, "tls": 0.015, "send": 0.001,
                                      "wait": 0.200}
    phases = split_phases(spans, 0.010, sent=True)
    assert phases == pytest.approx({"dns": 0.010, "connect": 0.020, "tls": 0.015,
                                    "send": 0.001, "wait": 0.200})
    assert spans["connect"] == 0.030  # the caller's dict is left alone


def test_split_phases_pooled_connection_zeroes_only_present_phases() -> None:
    """A sent request without a connect span gives 0.0 for dns/connect/tls where present."""
    spans: dict[str, float | None] = {"connect": None, "tls": None, "send": 0.001,
                                      "wait": 0.2}
    assert split_phases(spans, 0.004, sent=True) == {
        "dns": 0.0, "connect": 0.0, "tls": 0.0, "send": 0.001, "wait": 0.2}
    # plain http on a pooled connection: no tls key, and without a timed lookup no dns key
    assert split_phases({"connect": None, "send": 0.001, "wait": 0.2}, None, sent=True) == {
        "connect": 0.0, "send": 0.001, "wait": 0.2}


def test_split_phases_without_dns_keeps_connect_whole() -> None:
    """Without a DNS time connect is kept whole and no dns phase appears."""
    phases = split_phases({"connect": 0.030, "tls": 0.015, "send": None, "wait": None},
                          None, sent=False)
    assert phases == {"connect": 0.030, "tls": 0.015}


def test_split_phases_unsent_request_reports_nothing_made_up() -> None:
    """A request never sent gets no zero-filled phases: missing stays missing."""
    assert split_phases({"connect": None, "tls": None, "send": None, "wait": None},
                        0.004, sent=False) == {}


# --- 4. render cache ----------------------------------------------------------------------

def test_live_family_rerenders_only_the_changed_child() -> None:
    """After one child changes, render reuses the other child's very bytes object."""
    family = LiveFamily(Family("t_queue_depth", "gauge", "Queue depth.", ("queue",)))
    family.labels("a").set(1)
    family.labels("b").set(2)
    first = family.render(openmetrics=False)
    assert b"".join(first) == (b"# HELP t_queue_depth Queue depth.\n"
                               b"# TYPE t_queue_depth gauge\n"
                               b't_queue_depth{queue="a"} 1.0\n'
                               b't_queue_depth{queue="b"} 2.0\n')

    family.labels("a").set(3.5)
    second = family.render(openmetrics=False)
    assert b"".join(second) == (b"# HELP t_queue_depth Queue depth.\n"
                                b"# TYPE t_queue_depth gauge\n"
                                b't_queue_depth{queue="a"} 3.5\n'
                                b't_queue_depth{queue="b"} 2.0\n')
    assert second[0] is first[0]  # the header
    assert second[2] is first[2]  # child b, unchanged: not rendered again
    assert second[1] is not first[1]


# --- 5. bcrypt cache ----------------------------------------------------------------------

def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_authorized_runs_bcrypt_once_for_repeated_good_credentials(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Repeated correct credentials are checked by bcrypt once, then served from the cache."""
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    calls: list[bytes] = []
    real_check = auth._check

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        return real_check(password, hashed)

    monkeypatch.setattr(auth, "_check", counting)
    security = WebSecurity(WebConfig(basic_auth_users={"prom": hashed}))

    assert await security.authorized(_basic("prom", "pw"))
    assert await security.authorized(_basic("prom", "pw"))
    assert calls == [b"pw"]

    # a wrong password is never cached as good; its failure is cached too (a flood of the
    # same wrong password costs one bcrypt check, as in exporter-toolkit)
    assert not await security.authorized(_basic("prom", "nope"))
    assert not await security.authorized(_basic("prom", "nope"))
    assert calls == [b"pw", b"nope"]
    assert await security.authorized(_basic("prom", "pw"))


# --- 6. first run of a job ----------------------------------------------------------------

async def _nothing() -> None:
    return None


def _next_run(first_delay: float) -> tuple[datetime, datetime, datetime]:
    """(before add, the pending job's next_run_time, after add)."""
    jobs = Jobs(Metrics(CollectorRegistry()))
    before = datetime.now(UTC)
    jobs.add("probe:t", Job(_nothing, 1.0), interval=30.0, first_delay=first_delay)
    after = datetime.now(UTC)
    job = jobs._scheduler.get_job("probe:t")  # pending: the scheduler was never started
    assert job is not None
    when = job.next_run_time
    assert isinstance(when, datetime)
    return before, when, after


def test_job_first_run_is_within_two_seconds() -> None:
    """Jobs.add schedules a job's first run 0.1..2 s out, not a whole interval or more."""
    before, when, after = _next_run(0.0)
    assert before + timedelta(seconds=0.1) <= when <= after + timedelta(seconds=2.0)


def test_job_first_delay_is_added_before_the_jitter() -> None:
    """Jobs.add with first_delay=5 schedules the first run 5.1..7 s out."""
    before, when, after = _next_run(5.0)
    assert before + timedelta(seconds=5.1) <= when <= after + timedelta(seconds=7.0)


# --- 7. daily budget ----------------------------------------------------------------------

def test_daily_spend_rolls_over_at_utc_midnight() -> None:
    """A budget spent at 23:59:59 UTC is available again at 00:00:00 UTC the next day."""
    now = [datetime(2024, 5, 31, 23, 59, 59, tzinfo=UTC)]
    spend = DailySpend(Budget(daily_usd=1.0, daily_tokens=1000), clock=lambda: now[0])

    spend.add(0.5, 100)
    assert not spend.exhausted()
    spend.add(0.5, 100)
    assert spend.exhausted()
    assert (spend.usd, spend.tokens) == (1.0, 200)

    now[0] = datetime(2024, 6, 1, 0, 0, 0, tzinfo=UTC)
    assert not spend.exhausted()
    assert (spend.usd, spend.tokens) == (0.0, 0)


def test_daily_spend_tokens_alone_exhaust_and_same_day_keeps_counting() -> None:
    """The token budget alone exhausts the day; a later time the same day does not reset it."""
    now = [datetime(2024, 5, 31, 0, 0, 0, tzinfo=UTC)]
    spend = DailySpend(Budget(daily_tokens=1000), clock=lambda: now[0])
    spend.add(0.0, 999)
    assert not spend.exhausted()
    now[0] = datetime(2024, 5, 31, 23, 59, 59, tzinfo=UTC)
    spend.add(0.0, 1)
    assert spend.exhausted()
    assert spend.tokens == 1000


def test_daily_spend_without_budget_is_never_exhausted() -> None:
    """No budget means never exhausted, however much was spent."""
    spend = DailySpend(None, clock=lambda: datetime(2024, 5, 31, 12, tzinfo=UTC))
    spend.add(1e6, 10**9)
    assert not spend.exhausted()


# --- 8. streaming events: TTFT and ITL ----------------------------------------------------

def test_apply_events_same_read_gives_zero_gap_and_later_chunk_its_gap() -> None:
    """Two deltas in one read give TTFT from sent and an ITL of exactly 0.0; a later read
    gives the gap since the previous one."""
    result = ProbeResult(endpoint="e", prompt="p")
    timing = StreamTiming(sent=1_000_000_000)

    apply_events(result, [Delta("Hel"), Delta("lo")], at=1_250_000_000, timing=timing)
    assert result.ttft == 0.25
    assert result.time_to_first_answer == 0.25
    assert result.itl == [0.0]
    assert result.content_chunks == 2

    apply_events(result, [Delta("!"), Usage(prompt_tokens=7, output_tokens=3)],
                 at=1_300_000_000, timing=timing)
    assert result.itl == [0.0, 0.05]
    assert result.ttft == 0.25
    assert result.flush_text() == "Hello!"
    assert (result.prompt_tokens, result.output_tokens, result.tokens_from_usage) == (7, 3, True)
    assert timing.last == 1_300_000_000


def test_apply_events_reasoning_counts_for_ttft_but_not_the_answer() -> None:
    """A reasoning delta starts TTFT and reasoning time; the answer's first time comes later."""
    result = ProbeResult(endpoint="e", prompt="p")
    timing = StreamTiming(sent=0)
    apply_events(result, [Delta("hmm", reasoning=True)], at=500_000_000, timing=timing)
    apply_events(result, [Delta("5")], at=750_000_000, timing=timing)
    assert (result.ttft, result.time_to_first_reasoning, result.time_to_first_answer) == (
        0.5, 0.5, 0.75)
    assert result.itl == [0.25]
    assert result.flush_text() == "5"


# --- 9. answer checks ---------------------------------------------------------------------

def test_number_check_reads_the_last_number() -> None:
    """The number check compares the last number of the answer, not the first."""
    assert passes(Expect(number=5), "2 + 3 = 5")
    assert not passes(Expect(number=2), "2 + 3 = 5")
    assert passes(Expect(number=5), "The answer is 5.")
    assert not passes(Expect(number=5), "no digits here")


def test_number_check_thousands_separators_decimals_and_tolerance() -> None:
    """Thousands separators are read, and tolerance bounds the difference inclusively."""
    assert passes(Expect(number=1234), "617 * 2 = 1,234")
    assert passes(Expect(number=-3.5), "x = -3.5")
    assert passes(Expect(number=3.0, tolerance=0.25), "pi is about 3.14")
    assert not passes(Expect(number=3.0, tolerance=0.1), "pi is about 3.14")
    assert passes(Expect(number=10, tolerance=0.5), "10.5")


def test_insecure_skip_verify_wins_over_ca_file(tmp_path: Path) -> None:
    """With both set, certificates are not verified (as before the transport was rewritten);
    with only a CA file they are, against it."""
    ca = tmp_path / "ca.pem"
    ca.write_text(trustme.CA().cert_pem.bytes().decode())
    both = make_endpoint("https://127.0.0.1:1/v1",
                         tls_config={"ca_file": str(ca), "insecure_skip_verify": True})
    context = ssl_context(both)
    assert context is not None
    assert context.verify_mode == ssl.CERT_NONE
    only_ca = ssl_context(make_endpoint("https://127.0.0.1:1/v1", tls_config={"ca_file": str(ca)}))
    assert only_ca is not None
    assert only_ca.verify_mode == ssl.CERT_REQUIRED


def test_plain_http_builds_no_tls_context() -> None:
    """Loading a CA bundle for an http:// endpoint costs CPU and memory for nothing."""
    assert ssl_context(make_endpoint("http://127.0.0.1:1/v1")) is None
    assert ssl_context(make_endpoint("https://127.0.0.1:1/v1")) is not None


def test_one_tls_context_per_distinct_tls_config(tmp_path: Path) -> None:
    """Endpoints with the same TLS settings share one context (a CA bundle loaded once);
    another CA file, or the same file rewritten, gets its own."""
    ca = tmp_path / "ca.pem"
    ca.write_text(trustme.CA().cert_pem.bytes().decode())

    def context(url: str = "https://127.0.0.1:1/v1", **tls: object) -> ssl.SSLContext | None:
        return ssl_context(make_endpoint(url, tls_config=tls))

    assert context() is context("https://10.0.0.1:8443/v1")
    assert context(ca_file=str(ca)) is context("https://10.0.0.2/v1", ca_file=str(ca))
    assert context(ca_file=str(ca)) is not context()
    assert context(insecure_skip_verify=True) is not context()
    before = context(ca_file=str(ca))
    ca.write_text(trustme.CA().cert_pem.bytes().decode() + "\n")  # rotated: another size
    after = context(ca_file=str(ca))
    assert after is not before
    assert after is not None
    assert after.verify_mode == ssl.CERT_REQUIRED
