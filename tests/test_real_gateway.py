"""Verdicts against real servers: llama.cpp (llama-cpp-python, SmolLM2-135M) and LiteLLM's
proxy in front of it, over loopback. What these servers really send is in docs/design.md."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from llmmon.config import EndpointConfig, Prompt
from llmmon.probe.models import ListedModels
from llmmon.probe.result import ProbeResult
from llmmon.probe.run import run_probe
from llmmon.probe.transport import make_client
from tests.conftest import make_endpoint
from tests.realservers import LITELLM_KEY, MODEL_FILE, N_CTX, Llama

CAPITAL = Prompt.model_validate({"name": "capital", "text": "What is the capital of France?",
                                 "max_tokens": 20, "expect": {"contains": "Paris"}})
# Longer than the server's context: llama.cpp then answers 200 with an empty stream.
TOO_LONG = Prompt(name="long", text="word " * (N_CTX * 2), max_tokens=8)
# No nonce: SmolLM2-135M's answer changes after about 1 in 40 of them (test_real_llm.py).
SLOW = {"timeout": "60s", "cache_bust": False}


async def _probe(endpoint: EndpointConfig, prompt: Prompt = CAPITAL) -> ProbeResult:
    async with make_client(endpoint) as client:
        return await run_probe(client, endpoint, prompt, listed=ListedModels())


@pytest.fixture
def litellm_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LITELLM_TEST_KEY", LITELLM_KEY)
    return "LITELLM_TEST_KEY"


# --- llama.cpp ---------------------------------------------------------------------------

async def test_llama_cpp_serving_its_file_is_the_right_model(llama_server: Llama) -> None:
    """llama-cpp-python echoes any requested name; its /v1/models lists its file. The file's
    name (or a pattern for it) is right; another name is wrong_model, whatever the echo."""
    right = await _probe(make_endpoint(llama_server.url, model=MODEL_FILE, **SLOW))
    assert right.ok, (right.error, right.detail)
    assert right.check_passed
    assert right.served_model == MODEL_FILE  # the echo
    pattern = await _probe(make_endpoint(llama_server.url, model="smollm2",
                                         served_model=r".*/SmolLM2-[^/]*\.gguf", **SLOW))
    assert pattern.ok, (pattern.error, pattern.detail)
    wrong = await _probe(make_endpoint(llama_server.url, model="gpt-4o", **SLOW))
    assert wrong.error == "wrong_model"
    assert wrong.served_model == "gpt-4o"
    assert llama_server.model_path in (wrong.detail or "")
    unchecked = await _probe(make_endpoint(llama_server.url, model="gpt-4o", check_model=False,
                                           **SLOW))
    assert unchecked.ok


async def test_llama_cpp_empty_stream_is_not_success(llama_server: Llama) -> None:
    """A prompt past the context: 200, then a stream with nothing in it, not even [DONE]."""
    result = await _probe(make_endpoint(llama_server.url, model=MODEL_FILE, **SLOW), TOO_LONG)
    assert result.status == 200
    assert result.error == "protocol"
    assert "[DONE]" in (result.detail or "")


async def test_llama_cpp_without_v1_gets_the_path_hint(llama_server: Llama) -> None:
    result = await _probe(make_endpoint(llama_server.base, model=MODEL_FILE, **SLOW))
    assert result.error == "http_4xx"
    assert result.status == 404
    assert "should end at the API base" in (result.hint or "")


def test_llama_cpp_probe_json_shows_why(llama_server: Llama) -> None:
    """`llmmon probe --json` ad hoc: the wrong model with its detail and hint."""
    done = subprocess.run([sys.executable, "-m", "llmmon", "probe", "--url", llama_server.url,
                           "--model", "not-this-one", "--timeout", "60s", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert result["error"] == "wrong_model"
    assert MODEL_FILE in result["detail"]
    assert "served_model" in result["hint"]


# --- LiteLLM in front of it ----------------------------------------------------------------

@pytest.mark.parametrize(("provider", "api"), [("openai", "chat"), ("openai", "completions"),
                                              ("anthropic", None)])
async def test_litellm_healthy_routes(litellm_proxy: str, litellm_key: str, provider: str,
                                      api: str | None) -> None:
    """Chat, completions and Anthropic-format /v1/messages through the gateway: served under
    its alias (never wrong_model), its chunks read as not coalesced."""
    extra = {"api": api} if api else {}
    url = litellm_proxy + ("/v1" if provider == "openai" else "")
    prompt = CAPITAL if api != "completions" else Prompt(
        name="text", text="The capital of France is", max_tokens=8)
    result = await _probe(make_endpoint(url, provider, model="smol", api_key_env=litellm_key,
                                        **extra, **SLOW), prompt)
    assert result.ok, (result.error, result.detail)
    assert result.served_model == "smol"
    assert result.tokens_from_usage
    # Not coalesced. LiteLLM's streamed usage is its own estimate (8 tokens read as 7 on
    # completions), so only chat is exact.
    assert result.tokens_per_chunk is not None
    assert result.tokens_per_chunk <= 1
    if api == "chat":
        assert result.tokens_per_chunk == 1


async def test_litellm_empty_answer_is_empty(litellm_proxy: str, litellm_key: str) -> None:
    """Upstream's empty stream becomes LiteLLM's clean `finish_reason: stop` and [DONE]:
    200, well-formed, and no answer — `empty`, with success 0."""
    result = await _probe(make_endpoint(litellm_proxy + "/v1", model="smol",
                                        api_key_env=litellm_key, **SLOW), TOO_LONG)
    assert result.status == 200
    assert result.error == "empty", (result.error, result.detail)
    assert "no answer text" in (result.detail or "")


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_litellm_upstream_down(litellm_proxy: str, litellm_key: str,
                                     provider: str) -> None:
    url = litellm_proxy + ("/v1" if provider == "openai" else "")
    result = await _probe(make_endpoint(url, provider, model="broken",
                                        api_key_env=litellm_key, **SLOW))
    assert result.error == "http_5xx", (result.error, result.detail)
    assert "Connection error" in (result.detail or "")


async def test_litellm_unknown_model_lists_its_aliases(litellm_proxy: str,
                                                       litellm_key: str) -> None:
    result = await _probe(make_endpoint(litellm_proxy + "/v1", model="nosuch",
                                        api_key_env=litellm_key, **SLOW))
    assert result.error == "http_4xx"
    assert result.status == 400
    assert (result.hint or "").startswith("model nosuch not found; the server lists: ")
    assert "smol" in (result.hint or "")


async def test_litellm_missing_and_wrong_keys(litellm_proxy: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """No key: 401 and a hint to set one. A wrong key: LiteLLM's own 400, its message shown,
    the key never."""
    none = await _probe(make_endpoint(litellm_proxy + "/v1", model="smol", **SLOW))
    assert none.error == "http_4xx"
    assert none.status == 401
    assert "api_key_env" in (none.hint or "")
    wrong_key = "Zq7wrong-litellm-key-0042"
    monkeypatch.setenv("WRONG_KEY", wrong_key)
    wrong = await _probe(make_endpoint(litellm_proxy + "/v1", model="smol",
                                       api_key_env="WRONG_KEY", **SLOW))
    assert wrong.error == "http_4xx"
    assert wrong.detail
    assert wrong_key not in json.dumps(wrong.as_dict())
