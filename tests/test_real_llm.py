"""Against a real LLM server: llama.cpp serving SmolLM2-135M on loopback (scripts/install-llama).

Greedy decoding makes the answers repeatable, so they can be checked."""

from __future__ import annotations

import pytest

from llmmon.config import Prompt
from llmmon.probe.load import burst, load_clients
from tests.conftest import make_endpoint, probe
from tests.realservers import Llama

SUM = Prompt.model_validate({"name": "sum", "text": "What is 2 + 3?", "max_tokens": 20,
                             "expect": {"number": 5}})
CAPITAL = Prompt.model_validate({"name": "capital", "text": "What is the capital of France?",
                                 "max_tokens": 20, "expect": {"contains": "Paris"}})
# The endpoint's settings. No nonce: SmolLM2-135M answers "What is 2 + 3?" wrongly after about
# 1 in 40 of them (78/80 right, measured), and these tests check its answers.
SMOLLM = {"name": "llama", "model": "smollm2", "timeout": "60s", "cache_bust": False}


@pytest.fixture
def llama(llama_server: Llama) -> str:
    return llama_server.url


async def test_streamed_answers_pass_their_checks(llama: str) -> None:
    """Streaming chat probes of a real model get checkable answers and timed tokens."""
    for prompt in (SUM, CAPITAL):
        result = await probe(llama, prompt, **SMOLLM)
        assert result.ok, (result.error, result.text)
        assert result.check_passed
        assert result.ttft is not None
        assert result.ttft > 0
        assert len(result.itl) == result.content_chunks - 1


async def test_streamed_token_count_matches_server_usage(llama: str) -> None:
    """Tokens counted from the stream equal the server's own usage for the same answer."""
    streamed = await probe(llama, SUM, **SMOLLM)
    whole = await probe(llama, SUM, **SMOLLM, stream=False)
    assert whole.ok
    assert whole.tokens_from_usage
    assert streamed.text == whole.text
    assert streamed.output_tokens == whole.output_tokens
    assert whole.prompt_tokens is not None
    assert whole.prompt_tokens > 0


async def test_completions_api(llama: str) -> None:
    """The legacy completions API streams from the real server too."""
    prompt = Prompt(name="text", text="The capital of France is", max_tokens=8)
    result = await probe(llama, prompt, **SMOLLM, api="completions")
    assert result.ok, result.error
    assert result.output_tokens == 8
    assert result.text.strip()


@pytest.mark.parametrize("server", ["llama_server", "llama_cpp_server"])
async def test_a_load_burst_on_the_probes_own_connections(
        server: str, request: pytest.FixtureRequest) -> None:
    """The load probe's connections (probe/wire.py) against llama-cpp-python's uvicorn and
    llama.cpp's own llama-server, which closes a connection after a streamed answer: every
    request answered and checked, each sent the moment it was asked for."""
    base: Llama = request.getfixturevalue(server)
    ep = make_endpoint(base.url, **{**SMOLLM, "model": base.model_path,
                                    "prompts": [SUM.model_dump(exclude_none=True)]},
                       load={"concurrency": 2, "requests": 4, "timeout": "120s"})
    assert ep.load is not None
    clients = load_clients(ep, ep.load)
    try:
        out = await burst(clients, ep, ep.load)
    finally:
        for client in clients:
            await client.aclose()
    assert [r.error for r in out.results] == [None] * 4, [r.detail for r in out.results]
    assert all(r.check_passed for r in out.results)
    assert out.fired == 4
    assert all(sent >= asked for asked, sent in out.waits)
