"""The daemon as a real process: demo, exposition, HTTP routes, signals, reload."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import Daemon, SimProcess, sample, wait_for

SECRET = "sk-llmmon-daemon-PLANTED-abcdef0123456789"


def wait_metric(daemon: Daemon, name: str, timeout: float = 30, **labels: str) -> float:
    found: list[float] = []

    def present() -> bool:
        value = sample(daemon.metrics(), name, **labels)
        if value is not None:
            found.append(value)
        return value is not None and value > 0

    wait_for(present, timeout, f"{name}{labels} > 0")
    return found[-1]


def test_demo_serves_live_metrics_and_stops_on_sigterm(start_daemon: Callable[..., Daemon]
                                                       ) -> None:
    """`run --demo` serves build info, host memory and TTFT observations, then exits 0 fast."""
    daemon = start_daemon("--demo")
    # all within 30 s of start (the first runs are spread over the first 2 s)
    wait_metric(daemon, "llmmon_probe_time_to_first_token_seconds_count", llm_endpoint="demo")
    wait_metric(daemon, "llmmon_host_memory_total_bytes")
    text = daemon.metrics()
    assert sample(text, "llmmon_build_info") == 1
    assert sample(text, "llmmon_probe_success", llm_endpoint="demo") == 1
    assert sample(text, "llmmon_probe_errors_total", llm_endpoint="demo", reason="timeout") == 0
    assert sample(text, "llmmon_sampler_success", sampler="host") == 1
    assert sample(text, "llmmon_config_last_reload_successful") == 1
    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5
    assert "Traceback" not in daemon.log()


def test_exposition_passes_promtool(start_daemon: Callable[..., Daemon]) -> None:
    """promtool check metrics accepts the whole exposition (names, units, HELP, types)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required: scripts/test installs it (Debian package prometheus)"
    daemon = start_daemon("--demo")
    # every kind of family present: probes, the load probe, (scripted) GPUs, a process
    wait_metric(daemon, "llmmon_load_last_run_timestamp_seconds", llm_endpoint="demo")
    wait_metric(daemon, "llmmon_gpu_up", gpu="0")
    wait_metric(daemon, "llmmon_target_process_up", target="demo-server")
    checked = subprocess.run([promtool, "check", "metrics"], input=daemon.metrics(),
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_http_routes(start_daemon: Callable[..., Daemon]) -> None:
    """Health, readiness, landing page, content negotiation, gzip and wrong routes."""
    daemon = start_daemon("--demo")
    assert daemon.get("/healthz").text == "ok\n"
    assert daemon.get("/readyz").status_code == 200
    assert daemon.get("/nope").status_code == 404
    assert httpx.post(daemon.url + "/metrics").status_code == 405
    page = daemon.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert "<td>demo</td>" in page.text
    om = daemon.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n")
    plain = daemon.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert plain.headers["content-encoding"] == "gzip"
    assert "llmmon_build_info" in plain.text  # httpx decoded it


def test_scrapes_in_parallel_are_all_answered(start_daemon: Callable[..., Daemon]) -> None:
    """Twenty concurrent scrapes all get a full exposition."""
    import concurrent.futures

    daemon = start_daemon("--demo")
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        bodies = list(pool.map(lambda _: daemon.metrics(), range(20)))
    assert all("llmmon_build_info" in body for body in bodies)


def _endpoint(name: str, sim: SimProcess, **kw: object) -> dict[str, object]:
    return {"name": name, "provider": "openai", "url": sim.base, "model": "sim",
            "interval": "1s", "timeout": "5s", **kw}


def test_reload_keeps_old_config_on_error_and_swaps_on_success(
    start_daemon: Callable[..., Daemon], simulator_process: SimProcess,
    write_config: Callable[..., Path],
) -> None:
    """SIGHUP with a bad file keeps the old endpoints; POST /-/reload swaps in a good one."""
    path = write_config({"endpoints": [_endpoint("first", simulator_process)]})
    daemon = start_daemon("-c", str(path), "--web.enable-lifecycle")
    wait_metric(daemon, "llmmon_probe_success", llm_endpoint="first")

    path.write_text(yaml.safe_dump({"endpoints": [_endpoint("first", simulator_process,
                                                            interval="banana")]}))
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: sample(daemon.metrics(), "llmmon_config_last_reload_successful") == 0, 10,
             "the failed reload to be reported")
    assert "endpoints[0] (first).interval" in daemon.log()
    before = sample(daemon.metrics(), "llmmon_probe_requests_total", llm_endpoint="first",
                    outcome="success") or 0
    wait_for(lambda: (sample(daemon.metrics(), "llmmon_probe_requests_total", llm_endpoint="first",
                             outcome="success") or 0) > before, 10, "the old config to go on")
    bad = httpx.post(daemon.url + "/-/reload", timeout=10)
    assert bad.status_code == 500
    assert "reload rejected, see the log" in bad.text  # the log names the key; the answer not
    assert "interval" not in bad.text
    assert str(path) not in bad.text

    path.write_text(yaml.safe_dump({"endpoints": [_endpoint("second", simulator_process)]}))
    good = httpx.post(daemon.url + "/-/reload", timeout=10)
    assert good.status_code == 200, good.text
    assert sample(daemon.metrics(), "llmmon_config_last_reload_successful") == 1
    wait_metric(daemon, "llmmon_probe_success", llm_endpoint="second")
    assert 'llm_endpoint="first"' not in daemon.metrics()
    assert daemon.stop() == 0


def test_failing_endpoint_is_counted_and_readiness_unaffected(
    start_daemon: Callable[..., Daemon], simulator_process: SimProcess,
    write_config: Callable[..., Path],
) -> None:
    """An endpoint answering 500 becomes http_5xx errors; /readyz stays 200 (sidecar safety)."""
    simulator_process.configure(error_rate=1.0)
    path = write_config({"endpoints": [_endpoint("bad", simulator_process)]})
    daemon = start_daemon("-c", str(path))
    wait_metric(daemon, "llmmon_probe_errors_total", llm_endpoint="bad", reason="http_5xx")
    assert sample(daemon.metrics(), "llmmon_probe_success", llm_endpoint="bad") == 0
    assert daemon.get("/readyz").status_code == 200


def test_secret_never_leaves_the_process(
    start_daemon: Callable[..., Daemon], simulator_process: SimProcess,
    write_config: Callable[..., Path],
) -> None:
    """A planted key appears in no scrape, page, log or reload error."""
    config = {"log_level": "debug",
              "endpoints": [_endpoint("keyed", simulator_process, api_key_env="PLANTED_KEY")]}
    path = write_config(config)
    daemon = start_daemon("-c", str(path), "--web.enable-lifecycle",
                          env={"PLANTED_KEY": SECRET})
    wait_metric(daemon, "llmmon_probe_success", llm_endpoint="keyed")
    path.write_text(yaml.safe_dump({**config, "listen": SECRET}))
    reload = httpx.post(daemon.url + "/-/reload", timeout=10)
    assert reload.status_code == 500
    seen = daemon.metrics() + daemon.get("/").text + reload.text
    daemon.stop()
    assert SECRET not in seen + daemon.log()


def test_bad_config_at_start_exits_2_without_secret(start_daemon: Callable[..., Daemon],
                                                    write_config: Callable[..., Path]) -> None:
    """A daemon started on a bad config exits with code 2 and names the field."""
    path = write_config({"endpoints": [{"name": "x", "provider": "openai", "model": "m",
                                        "url": "http://127.0.0.1:1/v1", "interval": SECRET}]})
    daemon = start_daemon("-c", str(path), wait_ready=False)
    assert daemon.proc.wait(30) == 2
    assert "endpoints[0] (x).interval" in daemon.log()
    assert SECRET not in daemon.log()


def test_process_sampler_finds_target(start_daemon: Callable[..., Daemon],
                                      simulator_process: SimProcess,
                                      write_config: Callable[..., Path]) -> None:
    """A process target found by command line reports up, RSS and CPU."""
    target = {"name": "sim", "cmdline": f"llmmon.sim.simulator --port 0 "
                                        f"--tag {simulator_process.model}"}
    path = write_config({"samplers": {"process": {"interval": "1s", "targets": [target]}}})
    daemon = start_daemon("-c", str(path))
    wait_metric(daemon, "llmmon_target_process_up", target="sim")
    text = daemon.metrics()
    assert (sample(text, "llmmon_target_process_resident_memory_bytes", target="sim") or 0) > 1e6
    assert sample(text, "llmmon_target_process_open_fds", target="sim") is not None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_probe_exits_0(sig: int, start_daemon: Callable[..., Daemon],
                                     simulator_process: SimProcess,
                                     write_config: Callable[..., Path]) -> None:
    """A stop signal while a slow probe is in flight cancels it and exits 0 within 5 s."""
    simulator_process.configure(ttft=30.0)
    path = write_config({"endpoints": [_endpoint("slow", simulator_process, timeout="60s")]})
    daemon = start_daemon("-c", str(path))
    # the first probe is still waiting for its first token when its next 1 s tick comes
    wait_metric(daemon, "llmmon_scheduler_missed_runs_total", task="probe:slow", timeout=15)
    started = time.monotonic()
    assert daemon.stop(sig) == 0
    assert time.monotonic() - started < 5
    assert "Traceback" not in daemon.log()  # a cancelled probe is not a failed job


def test_budget_and_retry_after_skip_probes(
    start_daemon: Callable[..., Daemon], simulator_process: SimProcess,
    write_config: Callable[..., Path],
) -> None:
    """A spent daily budget and a server's Retry-After both skip probes, and say so."""
    simulator_process.configure(fault="http_429")  # Retry-After: 7
    config = {"endpoints": [
        _endpoint("budgeted", simulator_process, budget={"daily_tokens": 1},
                  pricing={"input_per_million": 1.0, "output_per_million": 2.0}),
        _endpoint("limited", simulator_process, provider="anthropic",
                  url=f"http://127.0.0.1:{simulator_process.port}"),
    ]}
    daemon = start_daemon("-c", str(write_config(config)))
    wait_metric(daemon, "llmmon_probe_requests_total", llm_endpoint="limited",
                outcome="rate_limited")
    simulator_process.configure(fault="")
    wait_metric(daemon, "llmmon_probe_skipped_total", llm_endpoint="limited", reason="retry_after")
    text = daemon.metrics()
    assert sample(text, "llmmon_probe_requests_total", llm_endpoint="limited",
                  outcome="rate_limited") == 1
    assert sample(text, "llmmon_probe_retry_after_seconds", llm_endpoint="limited") == 7
    # "budgeted" may have met the 429 too; once a probe succeeds its tokens spend the budget
    wait_metric(daemon, "llmmon_probe_skipped_total", llm_endpoint="budgeted", reason="budget",
                timeout=15)
    text = daemon.metrics()
    assert sample(text, "llmmon_probe_requests_total", llm_endpoint="budgeted",
                  outcome="success") == 1
    assert (sample(text, "llmmon_probe_cost_usd_total", llm_endpoint="budgeted") or 0) > 0
    assert sample(text, "llmmon_probe_budget_daily_tokens", llm_endpoint="budgeted") == 1


def test_answer_checks_are_counted_per_prompt(
    start_daemon: Callable[..., Daemon], simulator_process: SimProcess,
    write_config: Callable[..., Path],
) -> None:
    """Checks count pass and fail per prompt; a wrong answer is a check_failed probe."""
    prompts = [{"name": "capital", "text": "What is the capital of France?",
                "expect": {"contains": "Paris"}},
               {"name": "sum", "text": "What is 2 + 3?", "expect": {"number": 6}}]
    config = {"endpoints": [_endpoint("checked", simulator_process, prompts=prompts)]}
    daemon = start_daemon("-c", str(write_config(config)))
    wait_metric(daemon, "llmmon_probe_checks_total", llm_endpoint="checked", prompt="sum",
                result="fail")
    wait_metric(daemon, "llmmon_probe_checks_total", llm_endpoint="checked", prompt="capital",
                result="pass")
    text = daemon.metrics()
    assert sample(text, "llmmon_probe_checks_total", prompt="capital", result="fail") == 0
    assert (sample(text, "llmmon_probe_errors_total", llm_endpoint="checked",
                   reason="check_failed") or 0) >= 1


def test_probe_longer_than_its_interval_counts_skipped_runs(
    start_daemon: Callable[..., Daemon], simulator_process: SimProcess,
    write_config: Callable[..., Path],
) -> None:
    """A probe still running at its next tick makes that tick a counted skip, not a queue."""
    simulator_process.configure(ttft=2.5)
    path = write_config({"endpoints": [_endpoint("slow", simulator_process, timeout="10s")]})
    daemon = start_daemon("-c", str(path))
    wait_metric(daemon, "llmmon_scheduler_missed_runs_total", task="probe:slow", timeout=15)
    wait_metric(daemon, "llmmon_probe_success", llm_endpoint="slow", timeout=15)
    # a skipped tick is not a job error, and the slow probe itself still succeeds
    assert sample(daemon.metrics(), "llmmon_scheduler_job_errors_total", task="probe:slow") == 0


def test_reload_keeps_unchanged_endpoints_and_their_counters(
    start_daemon: Callable[..., Daemon], simulator_process: SimProcess,
    write_config: Callable[..., Path],
) -> None:
    """Reloading a config whose keyed endpoint only changed its interval keeps its counters
    (the endpoint is not torn down and recreated at zero)."""
    config = {"endpoints": [_endpoint("keyed", simulator_process, api_key_env="RELOAD_KEY")]}
    path = write_config(config)
    daemon = start_daemon("-c", str(path), "--web.enable-lifecycle", env={"RELOAD_KEY": "k"})
    wait_for(lambda: (sample(daemon.metrics(), "llmmon_probe_requests_total", llm_endpoint="keyed",
                             outcome="success") or 0) >= 2, 20, "two probes")
    before = sample(daemon.metrics(), "llmmon_probe_requests_total", llm_endpoint="keyed",
                    outcome="success") or 0
    assert httpx.post(daemon.url + "/-/reload", timeout=10).status_code == 200  # unchanged
    config["endpoints"][0]["interval"] = "2s"
    path.write_text(yaml.safe_dump(config))
    assert httpx.post(daemon.url + "/-/reload", timeout=10).status_code == 200  # new interval
    after = sample(daemon.metrics(), "llmmon_probe_requests_total", llm_endpoint="keyed",
                   outcome="success") or 0
    assert after >= before >= 2
