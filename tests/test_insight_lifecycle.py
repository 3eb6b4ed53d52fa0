"""The insight series across probes and reloads: what one result records and clears, what a
reload keeps, moves or drops, and results that arrive after their endpoint changed."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from llmmon.config.evals import EvalSuite
from llmmon.config.settings import Settings
from llmmon.daemon.runtime import Runtime
from llmmon.evals.runner import resume_at, run_suite
from llmmon.metrics import insight
from llmmon.metrics.recorder import Metrics
from llmmon.probe.modelinfo import ModelInfo
from llmmon.probe.result import ProbeResult
from llmmon.probe.transport import make_client
from llmmon.samplers.base import SamplerContext
from tests.conftest import make_endpoint, provider_url, sample

LABELS = ("e", "openai", "m")
OFF = {"host": {"enabled": False}, "process": {"enabled": False}, "gpu": {"enabled": False}}


def _text(m: Metrics) -> str:
    return m.exposition(False).decode()


def _result(**kw: Any) -> ProbeResult:
    return ProbeResult("e", "p", **kw)


def test_network_figures_are_the_last_measured_and_the_split_a_successful_probes() -> None:
    m = Metrics(CollectorRegistry())
    insight.record_network(m, LABELS, _result(ttft=0.5, rtt=0.01,
                                              server_timing={"prefill": 0.2, "decode": 1.0}))
    text = _text(m)
    assert sample(text, "llmmon_probe_ttft_share_seconds", share="server") == 0.2
    assert sample(text, "llmmon_probe_server_time_seconds", phase="decode") == 1.0
    failed = _result(error="http_5xx", ttft=0.1, rtt=None, server_timing={"total": 0.3})
    insight.record_network(m, LABELS, failed)
    text = _text(m)
    assert sample(text, "llmmon_probe_network_rtt_seconds") == 0.01  # the last measured
    # A new report replaces the phases whole: none stays from an older one.
    assert sample(text, "llmmon_probe_server_time_seconds", phase="decode") is None
    assert sample(text, "llmmon_probe_server_time_seconds", phase="total") == 0.3
    insight.record_network(m, LABELS, _result(error="connect"))
    assert sample(_text(m), "llmmon_probe_server_time_seconds", phase="total") == 0.3
    # The split stays the last *successful* probe's: a failed one has no TTFT to split.
    assert sample(text, "llmmon_probe_ttft_share_seconds", share="server") == 0.2


def test_cache_pairs_give_warm_over_cold_and_a_failure_is_counted() -> None:
    m = Metrics(CollectorRegistry())
    insight.add_cache(m, LABELS)
    insight.record_cache(m, LABELS, _result(ttft=0.2), _result(ttft=0.05, cached_tokens=90))
    text = _text(m)
    assert sample(text, "llmmon_cache_probe_ttft_ratio") == pytest.approx(0.25)
    assert sample(text, "llmmon_cache_probe_cached_tokens", cache="warm") == 90
    assert sample(text, "llmmon_cache_probe_errors_total", reason="timeout") == 0
    insight.record_cache(m, LABELS, _result(ttft=0.2), _result(error="timeout"))
    text = _text(m)
    assert sample(text, "llmmon_cache_probe_errors_total", reason="timeout") == 1
    assert sample(text, "llmmon_cache_probe_ttft_ratio") == pytest.approx(0.25)  # kept
    insight.record_cache(m, LABELS, _result(ttft=0.4), _result(ttft=0.1))
    text = _text(m)
    assert sample(text, "llmmon_cache_probe_cached_tokens", cache="warm") is None  # not said
    assert sample(text, "llmmon_cache_probe_ttft_seconds", cache="cold") == 0.4


def test_model_info_is_one_series_that_follows_the_server() -> None:
    m = Metrics(CollectorRegistry())
    insight.record_model(m, LABELS, ModelInfo(parameters=135_000_000, quantization="Q4_1",
                                              source="/v1/models"), 100.0)
    insight.record_model(m, LABELS, ModelInfo(quantization="Q8_0", source="model name"), 200.0)
    text = _text(m)
    assert [line for line in text.splitlines() if line.startswith("llmmon_model_info{")] == [
        'llmmon_model_info{llm_endpoint="e",provider="openai",model="m",quantization="Q8_0",'
        'source="name"} 1.0']
    assert sample(text, "llmmon_model_parameters") is None  # not said any more
    assert sample(text, "llmmon_model_info_timestamp_seconds") == 100.0  # the server's answer


def test_energy_per_token_only_with_tokens() -> None:
    m = Metrics(CollectorRegistry())
    insight.record_energy(m, LABELS, 10.0, 0)
    text = _text(m)
    assert sample(text, "llmmon_load_energy_joules") == 10.0
    assert sample(text, "llmmon_load_energy_joules_per_output_token") is None  # no tokens
    insight.record_energy(m, LABELS, 20.0, 40)
    assert sample(_text(m), "llmmon_load_energy_joules_per_output_token") == 0.5


def test_a_run_cut_short_resumes_at_its_first_unfinished_item() -> None:
    assert resume_at([3, 4, 0], {3, 4, 0}) == 3
    assert resume_at([3, 4, 0], {3, 0}) == 1  # 4 was cut: asked again, 0 rescored
    assert resume_at([3, 4, 0], set()) == 0
    assert resume_at([], set()) == 0


async def test_a_run_cut_by_its_timeout_is_partial(start_sim: Any) -> None:
    sim = await start_sim(ttft=5.0)
    endpoint = make_endpoint(provider_url(sim.base), timeout="30s")
    suite = EvalSuite.model_validate({"name": "s", "timeout": "1s", "items": [
        {"input": "What is 2 + 3?", "reference": "5", "scorer": "number"}] * 3})
    async with make_client(endpoint) as client:
        run = await run_suite(client, endpoint, suite, 1)
    assert run.outcome == "partial"
    assert run.items == []
    assert run.advanced == 0


def _runtime(config: dict[str, Any]) -> Runtime:
    return Runtime(Settings(**config), registry=CollectorRegistry(auto_describe=True),
                   samplers=SamplerContext())


def _config(url: str, **endpoint: Any) -> dict[str, Any]:
    return {"endpoints": [{"name": "t", "provider": "openai", "url": url, "model": "m",
                           "interval": "1h", "model_info": "0s", **endpoint}],
            "evals": [{"name": "s", "every": "1h", "items": [
                {"input": "What is 2 + 3?", "reference": "5", "scorer": "number"}] * 4,
                "sample": 1}],
            "samplers": OFF}


async def test_reloads_keep_the_suites_place_and_drop_what_was_turned_off(sim: Any) -> None:
    url = provider_url(sim.base)
    config = _config(url, cache_probe={"every": "1h", "prefix_words": 30})
    runtime = _runtime(config)
    runtime._apply(runtime.settings, first=True)
    try:
        await runtime.extra._eval(("s", "t"))
        await runtime.extra._cache(runtime.endpoints["t"])
        assert runtime.extra.evals[("s", "t")].offset == 1
        assert "llmmon_cache_probe_ttft_ratio{" in _text(runtime.metrics)
        # The suite changes (its schedule) and the cache probe goes: same identity.
        changed = _config(url)
        changed["evals"][0]["every"] = "2h"
        runtime._apply(Settings(**changed))
        assert runtime.extra.evals[("s", "t")].offset == 1  # its place kept
        text = _text(runtime.metrics)
        assert "llmmon_cache_probe_ttft_ratio{" not in text
        assert "llmmon_cache_probe_errors_total{" not in text
        assert sample(text, "llmmon_eval_score", suite="s", scorer="number") == 1.0
        # A new model is a new identity: the old series go, the suite starts over under
        # the new labels.
        renamed = _config(url, model="m2")
        runtime._apply(Settings(**renamed))
        text = _text(runtime.metrics)
        assert sample(text, "llmmon_eval_score", model="m") is None
        assert sample(text, "llmmon_eval_runs_total", model="m2", outcome="complete") == 0
        assert runtime.extra.evals[("s", "t")].offset == 0
    finally:
        await runtime.shutdown()


async def test_a_result_for_a_removed_or_renamed_endpoint_is_not_recorded(sim: Any) -> None:
    url = provider_url(sim.base)
    runtime = _runtime(_config(url))
    runtime._apply(runtime.settings, first=True)
    try:
        old = runtime.endpoints["t"]
        runtime._apply(Settings(**_config(url, model="m2")))
        runtime.extra.evals[("s", "t")].last = None
        await runtime.extra._model(old)  # asked before the reload, answered after it
        assert old.model is None
        text = _text(runtime.metrics)
        assert "llmmon_model_info{" not in text
        assert sample(text, "llmmon_eval_runs_total", model="m", outcome="complete") is None
    finally:
        await runtime.shutdown()


def test_the_concurrency_a_load_probe_reached() -> None:
    from llmmon.probe.load import most_at_once

    assert most_at_once([]) == 0
    assert most_at_once([(0, 10), (5, 15), (9, 20)]) == 3
    assert most_at_once([(0, 10), (10, 20), (20, 30)]) == 1  # back to back: one at a time
    assert most_at_once([(0, 100), (1, 2), (3, 4), (50, 60)]) == 2


async def test_an_item_that_cannot_be_scored_is_that_items_error(
        sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scorer that raises (a bug) costs its item, never the worker nor the run, and the
    rotation goes past it."""
    from llmmon.evals import runner

    real = runner.score

    def score(item: Any, answer: str, default: str, pass_score: float) -> Any:
        if item.input == "What is 1 + 1?":
            raise RuntimeError("a bug")
        return real(item, answer, default, pass_score)

    monkeypatch.setattr(runner, "score", score)
    endpoint = make_endpoint(provider_url(sim.base))
    suite = EvalSuite.model_validate({"name": "s", "concurrency": 2, "items": [
        {"input": "What is 1 + 1?", "reference": "2", "scorer": "number"},
        {"input": "What is 2 + 3?", "reference": "5", "scorer": "number"},
        {"input": "What is 4 + 4?", "reference": "8", "scorer": "number"}]})
    async with make_client(endpoint) as client:
        run = await run_suite(client, endpoint, suite, 0)
    assert run.outcome == "complete"
    assert [(i.index, i.result) for i in run.items] == [(0, "error"), (1, "pass"), (2, "pass")]
    assert run.items[0].detail == "could not be scored (RuntimeError)"
    assert run.scores() == {"number": 1.0}
    assert run.advanced == 3
