"""Evaluation suites, model information, the cache probe and network against server time,
against real llama.cpp servers on loopback: llama-cpp-python's (echoes prompt logprobs, for
perplexity) and llama.cpp's own llama-server (model `meta`, `timings`, prompt cache)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from rouge_score import rouge_scorer
from sacrebleu import sentence_bleu

from llmmon.config import Prompt
from llmmon.config.endpoints import CacheProbeConfig
from llmmon.probe.cache import run_cache_probe
from llmmon.probe.run import run_probe
from llmmon.probe.transport import make_client
from tests.conftest import Daemon, make_endpoint, sample, wait_for
from tests.realservers import Llama

pytestmark = pytest.mark.timeout(300)


def _series(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every series of one family in a text exposition, by its labels."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def _daemon_config(llama: Llama, cpp: Llama) -> dict[str, Any]:
    return {
        "endpoints": [
            {"name": "python", "provider": "openai", "url": llama.url, "model": "smollm2",
             "timeout": "60s", "interval": "1h", "model_info": "0s"},
            {"name": "cpp", "provider": "openai", "url": cpp.url, "model": cpp.model_path,
             "timeout": "60s", "interval": "2s",
             "cache_probe": {"every": "3s", "prefix_words": 200}},
        ],
        "evals": [
            {"name": "sanity", "builtin": "sanity", "endpoints": ["python"], "every": "2s",
             "sample": 6, "max_tokens": 32},
            # every item: its ROUGE-L and BLEU ones are checked against the references
            {"name": "reading", "builtin": "reading", "endpoints": ["python"], "every": "1h",
             "sample": 13, "max_tokens": 24},
        ],
        "samplers": {"host": {"enabled": False}, "gpu": {"enabled": False},
                     "process": {"enabled": False}},
    }


@pytest.fixture
def daemon(llama_server: Llama, llama_cpp_server: Llama,
           write_config: Callable[[dict[str, object]], Path],
           start_daemon: Callable[..., Daemon]) -> Daemon:
    return start_daemon("-c", str(write_config(_daemon_config(llama_server, llama_cpp_server))))


def test_suites_run_on_schedule_and_publish_what_their_items_scored(daemon: Daemon) -> None:
    """Two runs of the sanity suite rotate through its items; each published score is the
    mean of what /probes shows its items scored, and every F1, ROUGE-L and BLEU item's value
    is what the reference implementations give the same answer."""
    def runs(outcome: str = "complete") -> float:
        return sample(daemon.metrics(), "llmmon_eval_runs_total", llm_endpoint="python",
                      suite="sanity", outcome=outcome) or 0

    def reading_done() -> bool:
        return (sample(daemon.metrics(), "llmmon_eval_runs_total", llm_endpoint="python",
                       suite="reading", outcome="complete") or 0) >= 1

    wait_for(lambda: runs() >= 2 and reading_done(), 240, "two sanity runs and a reading run")
    metrics = daemon.metrics()
    evals = daemon.get("/probes", params={"endpoint": "python", "format": "json"}).json()["evals"]
    # Runs go on where the last stopped: the latest begins at a multiple of its sample.
    indices = [item["index"] for item in evals["sanity"]["items"]]
    assert len(indices) == 6
    assert indices[0] % 6 == 0
    for suite, run in evals.items():
        assert run["outcome"] == "complete"
        by_scorer: dict[str, list[float]] = {}
        for item in run["items"]:
            assert item["error"] is None, item
            by_scorer.setdefault(item["scorer"], []).append(item["value"])
        for scorer, values in by_scorer.items():
            published = sample(metrics, "llmmon_eval_score", llm_endpoint="python",
                               suite=suite, scorer=scorer)
            assert published is not None
            if scorer == "perplexity":
                assert published > 1
            else:
                assert published == pytest.approx(sum(values) / len(values)), (suite, scorer)
        counts = run["counts"]
        for result in ("pass", "fail", "error"):
            assert sample(metrics, "llmmon_eval_last_run_items", llm_endpoint="python", suite=suite,
                          result=result) == counts[result]
    _check_against_references(evals["reading"])


def _check_against_references(run: dict[str, Any]) -> None:
    from llmmon.config.evals import BUILTIN_DIR, read_suite

    items = read_suite(BUILTIN_DIR / "reading.jsonl")
    rouge = rouge_scorer.RougeScorer(["rougeL"])
    checked = 0
    for done in run["items"]:
        answer, refs = done["answer"], items[done["index"]].references()
        if answer.endswith("…"):  # cut for /probes: not the text that was scored
            continue
        if done["scorer"] == "bleu":
            expected = sentence_bleu(answer, refs).score / 100
        elif done["scorer"] == "rouge_l":
            expected = max(rouge.score(r, answer)["rougeL"].fmeasure for r in refs)
        else:
            continue
        assert done["value"] == pytest.approx(expected, abs=1e-9), done
        checked += 1
    assert checked == sum(i.scorer in ("bleu", "rouge_l") for i in items) > 0


def test_perplexity_from_the_servers_logprobs(llama_server: Llama) -> None:
    """llama-cpp-python echoes the logprobs of a prompt: its perplexity is their mean's
    exponent, as the server reported them."""
    import asyncio

    from llmmon.evals.logprobs import prompt_logprobs
    from llmmon.evals.scorers import perplexity

    endpoint = make_endpoint(llama_server.url, model="smollm2", timeout="60s")
    text = "The capital of France is Paris."

    async def ask() -> list[float | None]:
        async with make_client(endpoint) as client:
            found = await prompt_logprobs(client, endpoint, text)
        assert found.error is None, found.detail
        return found.logprobs

    logprobs = asyncio.run(ask())
    body = httpx.post(llama_server.url + "/completions", timeout=60, json={
        "model": "smollm2", "prompt": text, "max_tokens": 1, "echo": True, "logprobs": 1,
        "temperature": 0}).json()
    raw = body["choices"][0]["logprobs"]["token_logprobs"]
    assert logprobs == raw
    values = [v for v in raw if v is not None]
    assert perplexity(logprobs) == pytest.approx(math.exp(-sum(values) / len(values)))


def test_model_info_cache_probe_rtt_and_timings_from_llama_server(daemon: Daemon,
                                                                   llama_cpp_server: Llama
                                                                   ) -> None:
    meta = httpx.get(llama_cpp_server.url + "/models", timeout=10).json()["data"][0]["meta"]
    labels = {"llm_endpoint": "cpp"}

    def published() -> bool:
        text = daemon.metrics()
        return all(sample(text, name, **labels) is not None for name in (
            "llmmon_model_parameters", "llmmon_cache_probe_ttft_ratio",
            "llmmon_probe_network_rtt_seconds"))

    wait_for(published, 120, "model, cache and network figures")
    text = daemon.metrics()
    assert sample(text, "llmmon_model_parameters", **labels) == meta["n_params"]
    assert sample(text, "llmmon_model_size_bytes", **labels) == meta["size"]
    assert sample(text, "llmmon_model_context_length_tokens", **labels) == meta["n_ctx"]
    info = _series(text, "llmmon_model_info")
    assert any(dict(k).get("quantization") == "Q4_1" and dict(k)["source"] == "server"
               for k in info)
    cold = sample(text, "llmmon_cache_probe_ttft_seconds", cache="cold", **labels)
    warm = sample(text, "llmmon_cache_probe_ttft_seconds", cache="warm", **labels)
    assert cold is not None
    assert warm is not None
    assert warm < cold  # llama.cpp kept the shared prefix
    assert (sample(text, "llmmon_cache_probe_cached_tokens", cache="warm", **labels) or 0) > 150
    rtt = sample(text, "llmmon_probe_network_rtt_seconds", **labels)
    assert rtt is not None
    assert 0 < rtt < 0.5
    for phase in ("prefill", "decode"):
        assert (sample(text, "llmmon_probe_server_time_seconds", phase=phase, **labels)
                or 0) > 0
    shares = {s: sample(text, "llmmon_probe_ttft_share_seconds", share=s, **labels)
              for s in ("network", "server", "rest")}
    assert all(v is not None and v >= 0 for v in shares.values()), shares


async def test_probes_defeat_the_prefix_cache_unless_told_not_to(llama_cpp_server: Llama
                                                                 ) -> None:
    """The same prompt twice: with the default nonce llama.cpp reuses almost nothing of the
    first; with cache_bust off it serves nearly the whole prompt from its cache."""
    prompt = Prompt(name="p", text="Name three colours of the rainbow. " * 8, max_tokens=4)

    async def cached(bust: bool) -> tuple[int, int]:
        endpoint = make_endpoint(llama_cpp_server.url, model=llama_cpp_server.model_path,
                                 timeout="60s", cache_bust=bust)
        async with make_client(endpoint) as client:
            await run_probe(client, endpoint, prompt)
            second = await run_probe(client, endpoint, prompt)
        assert second.ok, second.detail
        assert second.prompt_tokens
        return second.cached_tokens or 0, second.prompt_tokens

    busted, total = await cached(True)
    assert busted < total / 3
    kept, total = await cached(False)
    assert kept > total * 0.8


async def test_cache_probe_direct(llama_cpp_server: Llama) -> None:
    endpoint = make_endpoint(llama_cpp_server.url, model=llama_cpp_server.model_path,
                             timeout="60s")
    async with make_client(endpoint) as client:
        cold, warm = await run_cache_probe(client, endpoint, CacheProbeConfig(prefix_words=200))
    assert cold.ok, cold.detail
    assert warm is not None
    assert warm.ok, warm.detail
    assert (warm.cached_tokens or 0) > (cold.cached_tokens or 0)
