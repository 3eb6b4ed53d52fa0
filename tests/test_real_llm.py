"""Against a real LLM server: llama.cpp serving SmolLM2-135M on loopback (scripts/install-llama).

Greedy decoding makes the answers repeatable, so they can be checked."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmmon.config import Prompt
from tests.conftest import probe, reported_port, wait_for

LLAMA_DIR = Path(os.environ.get("LLMMONTEST_LLAMA_DIR")
                 or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                 / "llmmon-test" / "llama")
SUM = Prompt.model_validate({"name": "sum", "text": "What is 2 + 3?", "max_tokens": 20,
                             "expect": {"number": 5}})
CAPITAL = Prompt.model_validate({"name": "capital", "text": "What is the capital of France?",
                                 "max_tokens": 20, "expect": {"contains": "Paris"}})
SMOLLM = {"name": "llama", "model": "smollm2", "timeout": "60s"}  # the endpoint's settings


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    python, model = LLAMA_DIR / "venv/bin/python", LLAMA_DIR / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not (python.exists() and model.exists()):
        message = f"no llama.cpp server under {LLAMA_DIR}: run scripts/install-llama"
        if os.environ.get("LLMMONTEST_REQUIRE_ALL"):
            pytest.fail(message)  # scripts/test installs it, so under it this is a failure
        pytest.skip(message)
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(python), "-m", "llama_cpp.server", "--model", str(model),
                                 "--host", "127.0.0.1", "--port", "0", "--n_ctx", "512"],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        # uvicorn (>= 0.14; the server extra asks for >= 0.22) names the port it got
        port = reported_port(proc, log_path, r"Uvicorn running on http://127\.0\.0\.1:(\d+)",
                             "the llama.cpp server", 90)
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert proc.poll() is None, "llama.cpp server exited"
            try:
                return httpx.get(base + "/v1/models", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 90, "the llama.cpp server")
        yield base + "/v1"
    finally:
        proc.terminate()
        proc.wait(10)


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
