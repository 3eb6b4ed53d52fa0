"""Objectives per endpoint: each probe counted good, bad or `starting` by llmmon itself, the
start-up grace, the run of failures that LLMEndpointDown reads, the config that sets them,
and the label names the Prometheus Operator leaves alone."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from llmmon.config import ConfigError
from llmmon.config.endpoints import SLO
from llmmon.config.environment import is_service_link
from llmmon.config.settings import load_settings
from llmmon.config.types import parse_ratio
from llmmon.metrics.docs import ALL_FAMILIES
from llmmon.probe.result import ProbeResult
from llmmon.probe.slo import SLOState, slo_events
from tests.conftest import Daemon, SimProcess, sample, wait_for

SLO_DEFAULT = SLO()  # TTFT 2 s, ITL 100 ms


def result(error: str | None = None, ttft: float | None = 0.5, itl: tuple[float, ...] = (),
           check: bool | None = None) -> ProbeResult:
    r = ProbeResult(endpoint="e", prompt="p", error=error)  # type: ignore[arg-type]
    r.ttft, r.itl, r.check_passed = ttft, list(itl), check
    if error is None:
        r.text = "answer"
    return r


def test_a_served_probe_is_good_everywhere_it_is_measured() -> None:
    events = slo_events(result(ttft=0.5, itl=(0.05, 0.1, 0.2), check=True), SLO_DEFAULT, False)
    assert events == {("availability", "good"): 1, ("ttft", "good"): 1, ("itl", "good"): 2,
                      ("itl", "bad"): 1, ("accuracy", "good"): 1}


def test_ttft_threshold_is_inclusive_and_per_endpoint() -> None:
    assert slo_events(result(ttft=2.0), SLO_DEFAULT, False)["ttft", "good"] == 1
    assert slo_events(result(ttft=2.001), SLO_DEFAULT, False)["ttft", "bad"] == 1
    assert slo_events(result(ttft=4.0), SLO(ttft=5.0), False)["ttft", "good"] == 1


def test_a_wrong_answer_is_available_but_inaccurate_and_has_no_latency_event() -> None:
    for wrong in (result("check_failed", check=False), result("wrong_model")):
        events = slo_events(wrong, SLO_DEFAULT, False)
        assert events == {("availability", "good"): 1, ("accuracy", "bad"): 1}, wrong.error


@pytest.mark.parametrize("reason", ["connect", "timeout", "http_5xx", "http_4xx",
                                    "rate_limited", "protocol", "empty"])
def test_an_unanswered_probe_is_bad_or_starting(reason: str) -> None:
    assert slo_events(result(reason, ttft=None), SLO_DEFAULT, False) == {
        ("availability", "bad"): 1}
    assert slo_events(result(reason, ttft=None), SLO_DEFAULT, True) == {
        ("availability", "starting"): 1}


def test_grace_lasts_until_the_first_answer_or_its_end() -> None:
    state = SLOState(started=100.0, grace=60.0)
    down = result("connect", ttft=None)
    assert state.record(down, SLO_DEFAULT, 100.0) == {("availability", "starting"): 1}
    assert state.record(down, SLO_DEFAULT, 159.9) == {("availability", "starting"): 1}
    assert state.consecutive_failures == 0
    assert state.starting(159.9)
    assert not state.starting(160.0)
    assert state.record(down, SLO_DEFAULT, 160.0) == {("availability", "bad"): 1}
    assert state.consecutive_failures == 1


def test_an_answer_ends_the_grace_for_good_and_resets_the_run() -> None:
    state = SLOState(started=0.0, grace=600.0)
    state.record(result(), SLO_DEFAULT, 1.0)
    assert not state.starting(2.0)
    down = result("http_5xx", ttft=None)
    assert state.record(down, SLO_DEFAULT, 2.0) == {("availability", "bad"): 1}
    state.record(down, SLO_DEFAULT, 3.0)
    assert state.consecutive_failures == 2
    state.record(result("check_failed", check=False), SLO_DEFAULT, 4.0)  # answered: not down
    assert state.consecutive_failures == 0


def test_no_grace_counts_the_first_failure() -> None:
    state = SLOState(started=0.0, grace=0.0)
    assert state.record(result("connect", ttft=None), SLO_DEFAULT, 0.0) == {
        ("availability", "bad"): 1}


@pytest.mark.parametrize(("text", "ratio"), [("99.5%", 0.995), (" 95% ", 0.95),
                                             (0.999, 0.999)])
def test_ratios_read_as_percent_or_share(text: object, ratio: float) -> None:
    assert parse_ratio(text) == pytest.approx(ratio)


@pytest.mark.parametrize("bad", ["100%", "0%", 1, 0, 1.5, "abc%", "99.5", True, None, "nan%"])
def test_ratios_outside_zero_to_one_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="above 0 and below 1"):
        parse_ratio(bad)


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


ENDPOINT = "{name: a, provider: openai, url: 'http://127.0.0.1:1/v1', model: m"


def test_endpoint_slo_keys_override_the_defaults_one_by_one(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path, f"""
defaults: {{slo: {{availability: 99%, ttft: 3s}}, startup_grace: 5m}}
endpoints:
  - {ENDPOINT}, slo: {{ttft: 500ms}}, startup_grace: 0s}}
  - {ENDPOINT.replace("a,", "b,")}}}
"""))
    a, b = settings.endpoints
    assert (a.slo.availability, a.slo.ttft, a.slo.itl, a.startup_grace) == (0.99, 0.5, 0.1, 0.0)
    assert (b.slo.availability, b.slo.ttft, b.startup_grace) == (0.99, 3.0, 300.0)


def test_a_bad_objective_names_its_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(_config(tmp_path, f"endpoints:\n  - {ENDPOINT}, slo: {{accuracy: 120%}}}}\n"))
    assert "endpoints[0] (a).slo.accuracy" in str(error.value)
    assert "below 1" in str(error.value)


SERVICE_LINKS = {  # what Kubernetes injects for a Service `llmmon` with port 9977 `metrics`
    "LLMMON_SERVICE_HOST": "10.96.0.12", "LLMMON_SERVICE_PORT": "9977",
    "LLMMON_SERVICE_PORT_METRICS": "9977", "LLMMON_PORT": "tcp://10.96.0.12:9977",
    "LLMMON_PORT_9977_TCP": "tcp://10.96.0.12:9977", "LLMMON_PORT_9977_TCP_PROTO": "tcp",
    "LLMMON_PORT_9977_TCP_PORT": "9977", "LLMMON_PORT_9977_TCP_ADDR": "10.96.0.12",
    # a Service `llmmon-node`, on an IPv6 cluster
    "LLMMON_NODE_SERVICE_HOST": "fd00:10:96::c", "LLMMON_NODE_PORT": "tcp://[fd00:10:96::c]:80",
}


def test_kubernetes_service_links_are_not_settings(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SERVICE_LINKS.items():
        assert is_service_link(name, value), name
        monkeypatch.setenv(name, value)
    assert load_settings(_config(tmp_path, f"endpoints:\n  - {ENDPOINT}}}\n")).endpoints


@pytest.mark.parametrize(("name", "value"), [("LLMMON_PORT", "9977"),
                                             ("LLMMON_LISTEN_PORT", "9977"),
                                             ("LLMMON_SERVICE_HOST", "llmmon.example")])
def test_a_setting_typo_shaped_like_a_link_is_still_reported(
        name: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"environment variable {name}: matches no setting"):
        load_settings(_config(tmp_path, f"endpoints:\n  - {ENDPOINT}}}\n"))


# Labels Prometheus or the Prometheus Operator set on every target; an llmmon series with one
# of them would be renamed exported_* (and `endpoint` was: every endpoint read "metrics").
TARGET_LABELS = {"endpoint", "namespace", "pod", "service", "container", "job", "instance"}


def test_no_family_carries_a_target_label() -> None:
    clashing = [(f.name, set(f.labels) & TARGET_LABELS) for f in ALL_FAMILIES
                if set(f.labels) & TARGET_LABELS]
    assert not clashing
    assert any("llm_endpoint" in f.labels for f in ALL_FAMILIES)


# --- the daemon counts them ------------------------------------------------------------


def test_daemon_counts_starting_then_down_and_objectives(
    start_daemon: Callable[..., Daemon], simulator_process: SimProcess,
    write_config: Callable[..., Path],
) -> None:
    """A failing endpoint with a grace counts `starting` and no run of failures; one without
    counts bad and its run grows; a serving one publishes its objectives and good events."""
    simulator_process.configure(error_rate=1.0)
    base = {"provider": "openai", "url": simulator_process.base, "model": "sim",
            "interval": "1s", "timeout": "5s"}
    config = {"endpoints": [
        {**base, "name": "loading", "startup_grace": "1h"},
        {**base, "name": "down", "startup_grace": "0s", "slo": {"availability": "99.9%"}},
    ]}
    daemon = start_daemon("-c", str(write_config(config)))

    def count(endpoint: str, result: str) -> float:
        return sample(daemon.metrics(), "llmmon_probe_slo_events_total", llm_endpoint=endpoint,
                      objective="availability", result=result) or 0

    wait_for(lambda: count("down", "bad") >= 2 and count("loading", "starting") >= 2, 30,
             "failed probes counted")
    text = daemon.metrics()
    assert count("loading", "bad") == 0
    assert count("down", "starting") == 0
    assert sample(text, "llmmon_probe_starting", llm_endpoint="loading") == 1
    assert sample(text, "llmmon_probe_starting", llm_endpoint="down") == 0
    assert sample(text, "llmmon_probe_consecutive_failures", llm_endpoint="loading") == 0
    assert (sample(text, "llmmon_probe_consecutive_failures", llm_endpoint="down") or 0) >= 2
    assert sample(text, "llmmon_probe_slo_objective_ratio", llm_endpoint="down",
                  objective="availability") == pytest.approx(0.999)
    assert sample(text, "llmmon_probe_slo_threshold_seconds", llm_endpoint="down",
                  objective="ttft") == 2.0

    simulator_process.configure(error_rate=0.0)
    wait_for(lambda: count("loading", "good") >= 1 and count("down", "good") >= 1, 30,
             "answers counted")
    wait_for(lambda: sample(daemon.metrics(), "llmmon_probe_starting",
                            llm_endpoint="loading") == 0, 10, "the grace to end with an answer")
    text = daemon.metrics()
    assert sample(text, "llmmon_probe_consecutive_failures", llm_endpoint="down") == 0
    assert (sample(text, "llmmon_probe_slo_events_total", llm_endpoint="down", objective="ttft",
                   result="good") or 0) >= 1


def test_a_reload_keeps_what_the_grace_knows(
    start_daemon: Callable[..., Daemon], simulator_process: SimProcess,
    write_config: Callable[..., Path],
) -> None:
    """An endpoint that has answered stays out of its grace across a reload that keeps its
    identity (a new interval): its next failures are bad, not `starting`."""
    endpoint = {"name": "e", "provider": "openai", "url": simulator_process.base, "model": "sim",
                "interval": "1s", "timeout": "5s", "startup_grace": "1h"}
    path = write_config({"endpoints": [endpoint]})
    daemon = start_daemon("-c", str(path))

    def count(result: str) -> float:
        return sample(daemon.metrics(), "llmmon_probe_slo_events_total", llm_endpoint="e",
                      objective="availability", result=result) or 0

    wait_for(lambda: count("good") >= 1, 30, "an answer")
    simulator_process.configure(error_rate=1.0)
    write_config({"endpoints": [{**endpoint, "interval": "2s"}]})
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: sample(daemon.metrics(), "llmmon_probe_interval_seconds",
                            llm_endpoint="e") == 2, 20, "the reload")
    wait_for(lambda: count("bad") >= 2, 30, "failures after the reload")
    assert count("starting") == 0
    assert (sample(daemon.metrics(), "llmmon_probe_consecutive_failures", llm_endpoint="e")
            or 0) >= 2
