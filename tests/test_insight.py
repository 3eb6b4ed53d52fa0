"""Evaluation runs, cache probes, TTFT shares and GPU energy: the pure logic on literal
inputs, then the daemon's jobs against the simulator and scripted GPUs."""

from __future__ import annotations

import math
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from llmmon.config.endpoints import CacheProbeConfig
from llmmon.config.evals import EvalSuite
from llmmon.config.settings import Settings
from llmmon.daemon.runtime import Runtime
from llmmon.evals.logprobs import text_logprobs
from llmmon.evals.runner import EvalRun, ItemResult, pick, run_suite
from llmmon.evals.scorers import perplexity
from llmmon.metrics.insight import ttft_shares
from llmmon.probe.cache import cache_prompts
from llmmon.probe.transport import make_client
from llmmon.samplers.base import SamplerContext
from llmmon.samplers.energy import joules_between, read_energy
from llmmon.sim.nvml import FakeGPU, FakeNVML
from tests.conftest import make_endpoint, provider_url, sample

# --- literal inputs ----------------------------------------------------------------------


def test_ttft_shares_add_up_and_never_go_negative() -> None:
    assert ttft_shares(1.0, 0.1, {"queue": 0.2, "prefill": 0.3}) == pytest.approx(
        {"network": 0.1, "server": 0.5, "rest": 0.4})
    # A server that reports more than the client saw: capped, so shares still add up.
    assert ttft_shares(0.5, 0.1, {"prefill": 0.9}) == pytest.approx(
        {"network": 0.1, "server": 0.4, "rest": 0.0})
    assert ttft_shares(0.05, 0.2, {}) == pytest.approx({"network": 0.05, "server": 0.0,
                                                         "rest": 0.0})
    assert ttft_shares(1.0, None, {"decode": 0.7}) == pytest.approx(
        {"network": 0.0, "server": 0.0, "rest": 1.0})  # decode is after the first token


def _suite(n: int, sample: int) -> EvalSuite:
    items = [{"input": f"q{i}", "reference": str(i), "scorer": "number"} for i in range(n)]
    return EvalSuite.model_validate({"name": "s", "items": items, "sample": sample})


def test_runs_rotate_through_the_items() -> None:
    suite = _suite(5, 3)
    assert [i for i, _ in pick(suite, 0)] == [0, 1, 2]
    assert [i for i, _ in pick(suite, 3)] == [3, 4, 0]
    assert [i for i, _ in pick(_suite(2, 3), 1)] == [1, 0]  # never an item twice in a run


def test_run_scores_are_means_and_perplexity_is_over_all_tokens() -> None:
    run = EvalRun("s", "e", items=[
        ItemResult(0, None, "f1", 0.5, True), ItemResult(1, None, "f1", 0.0, False),
        ItemResult(2, None, "exact", 1.0, True),
        ItemResult(3, None, "f1", None, None, error="timeout"),
        # perplexity 2 over 1 token and 8 over 3: exp((ln 2 + 3 ln 8) / 4)
        ItemResult(4, None, "perplexity", 2.0, None, nll=math.log(2), scored_tokens=1),
        ItemResult(5, None, "perplexity", 8.0, None, nll=3 * math.log(8), scored_tokens=3),
    ])
    scores = run.scores()
    assert scores["f1"] == pytest.approx(0.25)
    assert scores["exact"] == 1.0
    assert scores["perplexity"] == pytest.approx(math.exp((math.log(2) + 3 * math.log(8)) / 4))
    assert run.counts() == {"pass": 2, "fail": 1, "error": 1}  # a perplexity is neither


def test_echoed_logprobs_keep_the_prompts_tokens_only() -> None:
    vllm = {"choices": [{"logprobs": {"token_logprobs": [None, -1.0, -2.0, -0.5],
                                      "text_offset": [0, 3, 7, 11]}}]}
    assert text_logprobs(vllm, 11) == [None, -1.0, -2.0]  # the generated token dropped
    junk = {"choices": [{"logprobs": {"token_logprobs": [None, "x", -0.5, True, -1]}}]}
    found = text_logprobs(junk, 99)
    assert found[0] is None
    assert math.isnan(found[1])
    assert math.isnan(found[3])
    assert found[2::2] == [-0.5, -1.0]
    assert perplexity(found) is None  # junk is refused, not skipped
    server = {"choices": [{"logprobs": {"content": [{"token": "\n", "logprob": -0.9}]}}]}
    assert text_logprobs(server, 5) == []  # llama-server: the generated token's only
    assert text_logprobs({"choices": "no"}, 5) == []


def test_cache_prompts_share_their_prefix_and_nothing_before_it() -> None:
    config = CacheProbeConfig(prefix_words=50)
    cold, warm = cache_prompts(config, nonce="abc")
    cut = cold.text.index("What is")
    assert cold.text[:cut] == warm.text[:cut]
    assert cold.text.startswith("Session abc.")
    assert cold.text != warm.text
    assert len(cold.text[:cut].split()) > 50
    other, _ = cache_prompts(config)
    assert other.text[:20] != cold.text[:20]  # a fresh nonce each pair


def test_energy_between_two_readings() -> None:
    assert joules_between({"a": 1000, "b": 5000}, {"a": 61_000, "b": 5000}) == 60.0
    assert joules_between({"a": 1000}, {"b": 9000}) is None  # no GPU read twice
    assert joules_between({"a": 9000}, {"a": 1000}) == 0.0  # a counter reset: nothing
    assert joules_between(None, {"a": 1}) is None


def test_read_energy_skips_gpus_without_the_counter() -> None:
    import pynvml

    gpus = [FakeGPU(uuid="GPU-a", energy_mj=1234), FakeGPU(uuid="GPU-b", energy_mj=1)]
    nvml = FakeNVML(gpus)
    gpus[1].errors["nvmlDeviceGetTotalEnergyConsumption"] = pynvml.NVML_ERROR_NOT_SUPPORTED
    assert read_energy(nvml.module) == {"GPU-a": 1234}
    assert read_energy(FakeNVML([], library=False).module) is None


# --- the daemon's jobs -------------------------------------------------------------------


def _runtime(config: dict[str, Any], nvml: Any = None) -> Runtime:
    return Runtime(Settings(**config), registry=CollectorRegistry(auto_describe=True),
                   samplers=SamplerContext(nvml=nvml))


async def test_eval_suite_scores_the_simulators_answers(sim: Any) -> None:
    endpoint = make_endpoint(provider_url(sim.base))
    suite = EvalSuite.model_validate({"name": "s", "concurrency": 2, "items": [
        {"input": "What is the capital of France?", "reference": "Paris", "scorer": "contains"},
        {"input": "What is 2 + 3?", "reference": "5", "scorer": "number"},
        {"input": "Say hello.", "reference": "hello there", "scorer": "f1"},
        {"input": "What is 4 + 4?", "expect": {"number": 9}},
    ]})
    spent: list[int] = []
    async with make_client(endpoint) as client:
        run = await run_suite(client, endpoint, suite, 0,
                              spend=lambda usd, tokens: spent.append(tokens))
    assert run.outcome == "complete"
    assert [i.index for i in run.items] == [0, 1, 2, 3]
    assert run.scores() == {"contains": 1.0, "number": 1.0, "f1": 0.0, "expect": 0.0}
    assert run.counts() == {"pass": 2, "fail": 2, "error": 0}
    assert len(spent) == 4
    assert sum(spent) == run.spent_tokens > 0


async def test_eval_stops_at_the_budget_and_token_cap(sim: Any) -> None:
    endpoint = make_endpoint(provider_url(sim.base))
    suite = EvalSuite.model_validate({"name": "s", "tokens_per_run": 1, "items": [
        {"input": f"What is {i} + 1?", "reference": str(i + 1), "scorer": "number"}
        for i in range(4)]})
    async with make_client(endpoint) as client:
        capped = await run_suite(client, endpoint, suite, 0)
        skipped = await run_suite(client, endpoint, suite, 0, exhausted=lambda: True)
    assert capped.outcome == "partial"
    assert len(capped.items) == 1  # the first item spent the run's tokens
    assert skipped.outcome == "skipped"
    assert skipped.items == []


async def test_load_probe_energy_is_the_scripted_delta_over_tokens_served(sim: Any) -> None:
    """Two scripted GPUs use 30 J and 12 J during the load probe: the daemon publishes 42 J
    over exactly the output tokens the load probe served."""
    gpus = [FakeGPU(uuid="GPU-a", energy_mj=5_000_000), FakeGPU(uuid="GPU-b", energy_mj=0)]
    nvml = FakeNVML(gpus)
    reads: list[int] = []
    read = nvml.module.nvmlDeviceGetTotalEnergyConsumption

    def scripted(handle: Any) -> int:  # the second reading of each GPU: after the burst
        reads.append(1)
        if len(reads) > 2:
            gpus[0].energy_mj, gpus[1].energy_mj = 5_030_000, 12_000
        return int(read(handle))

    nvml.module.nvmlDeviceGetTotalEnergyConsumption = scripted
    runtime = _runtime({
        "endpoints": [{"name": "t", "provider": "openai", "url": provider_url(sim.base),
                       "model": "m", "interval": "1h", "model_info": "0s",
                       "load": {"concurrency": 2, "requests": 4, "every": "1h"}}],
        "samplers": {"host": {"enabled": False}, "process": {"enabled": False},
                     "gpu": {"enabled": True, "interval": "1h"}}}, nvml.module)
    runtime._apply(runtime.settings, first=True)
    try:
        state = runtime.endpoints["t"]
        await runtime.extra._load(state)
        text = runtime.metrics.exposition(False).decode()
        tokens = sample(text, "llmmon_load_output_tokens_per_second", llm_endpoint="t")
        duration = sample(text, "llmmon_load_duration_seconds", llm_endpoint="t")
        assert tokens is not None
        assert duration is not None
        served = round(tokens * duration)
        assert served > 0
        assert sample(text, "llmmon_load_energy_joules", llm_endpoint="t") == 42.0
        assert sample(text, "llmmon_load_energy_joules_per_output_token",
                      llm_endpoint="t") == pytest.approx(42.0 / served)
        assert sample(text, "llmmon_load_output_tokens_per_joule",
                      llm_endpoint="t") == pytest.approx(served / 42.0)
    finally:
        await runtime.shutdown()


async def test_a_removed_suite_takes_its_series_and_job_with_it(sim: Any) -> None:
    config: dict[str, Any] = {
        "endpoints": [{"name": "t", "provider": "openai", "url": provider_url(sim.base),
                       "model": "m", "interval": "1h", "model_info": "0s"}],
        "evals": [{"name": "s", "every": "1h", "items": [
            {"input": "What is 2 + 3?", "reference": "5", "scorer": "number"}]}],
        "samplers": {"host": {"enabled": False}, "process": {"enabled": False},
                     "gpu": {"enabled": False}}}
    runtime = _runtime(config)
    runtime._apply(runtime.settings, first=True)
    try:
        await runtime.extra._eval(("s", "t"))
        text = runtime.metrics.exposition(False).decode()
        assert sample(text, "llmmon_eval_score", suite="s", scorer="number") == 1.0
        assert runtime.extra.eval_results("t")["s"]["items"][0]["value"] == 1.0
        runtime._apply(Settings(**{**config, "evals": []}))
        text = runtime.metrics.exposition(False).decode()
        assert "llmmon_eval_score{" not in text
        assert "llmmon_eval_runs_total{" not in text
        assert runtime.extra.evals == {}
    finally:
        await runtime.shutdown()


async def test_the_model_info_job_publishes_the_simulators_model(sim: Any) -> None:
    runtime = _runtime({
        "endpoints": [{"name": "t", "provider": "openai", "url": provider_url(sim.base),
                       "model": "Llama-3.1-8B-Instruct-Q4_K_M", "interval": "1h"}],
        "samplers": {"host": {"enabled": False}, "process": {"enabled": False},
                     "gpu": {"enabled": False}}})
    runtime._apply(runtime.settings, first=True)
    try:
        await runtime.extra._model(runtime.endpoints["t"])
        assert runtime.endpoints["t"].model is not None
        text = runtime.metrics.exposition(False).decode()
        assert sample(text, "llmmon_model_parameters", llm_endpoint="t") == 8e9
        assert 'quantization="Q4_K_M"' in text
    finally:
        await runtime.shutdown()


async def test_a_key_file_gone_is_a_perplexity_items_error_not_a_crash(tmp_path: Any,
                                                                       sim: Any) -> None:
    from llmmon.evals.logprobs import prompt_logprobs

    key = tmp_path / "key"
    key.write_text("sk-test-0123456789abcdef\n")
    endpoint = make_endpoint(provider_url(sim.base), api_key_file=str(key))
    key.unlink()
    async with make_client(endpoint) as client:
        found = await prompt_logprobs(client, endpoint, "The sky is blue.")
    assert found.error == "protocol"
    assert "secret cannot be read" in (found.detail or "")
    assert "sk-test" not in (found.detail or "")
