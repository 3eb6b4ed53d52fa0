"""Verdicts you can trust, against the simulator over loopback: a probe that does not serve a
user fails with the reason named for it, says why (detail, hint), and never escapes."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from llmmon.config import Prompt
from llmmon.daemon.httpserver import Request, Response
from llmmon.probe.models import ListedModels
from llmmon.probe.run import run_probe
from llmmon.probe.transport import make_client
from tests.conftest import SimServer, make_endpoint, probe

Serve = Callable[[Callable[[Request], Awaitable[Response]]], Awaitable[str]]

PROVIDERS = ("openai", "anthropic", "ollama", "tgi")
CAPITAL = Prompt.model_validate({"name": "capital", "text": "What is the capital of France?",
                                 "expect": {"contains": "Paris"}})
SECRET = "Zq7verdictKey0c1e9b3d5f"  # no sk- prefix: only the configured key's masking hides it

Start = Callable[..., Awaitable[SimServer]]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("stream", [True, False])
async def test_an_answer_without_tokens_is_empty(start_sim: Start, provider: str,
                                                 stream: bool) -> None:
    """200 and a well-formed response with no answer text fails as `empty`."""
    sim = await start_sim(fault="empty", ttft=0.0, itl=0.0)
    result = await probe(sim.url(provider), provider=provider, stream=stream)
    assert result.error == "empty", (result.error, result.detail)
    assert result.status == 200
    assert result.detail is not None
    assert "no answer text" in result.detail


@pytest.mark.parametrize("provider", ["openai", "anthropic", "ollama"])
async def test_thinking_without_an_answer_is_empty(start_sim: Start, provider: str) -> None:
    sim = await start_sim(fault="thinking_only", ttft=0.0, itl=0.0)
    result = await probe(sim.url(provider), provider=provider)
    assert result.error == "empty"
    assert result.time_to_first_reasoning is not None  # the thinking did arrive
    assert "thinking" in (result.detail or "")


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("stream", [True, False])
async def test_deep_json_is_a_protocol_error_not_an_exception(start_sim: Start, provider: str,
                                                              stream: bool) -> None:
    """100,000-deep JSON (RecursionError in json.loads) ends as `protocol`, not a crash."""
    sim = await start_sim(fault="deep_json", ttft=0.0, itl=0.0)
    result = await probe(sim.url(provider), provider=provider, stream=stream)
    assert result.error == "protocol"
    assert result.detail


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_absurd_usage_is_ignored_as_if_absent(start_sim: Start, provider: str) -> None:
    """A 400-digit token count is no count: tokens are counted from the stream, and TPOT
    (which divided by it) is computed without overflowing."""
    sim = await start_sim(fault="huge_usage", ttft=0.0, itl=0.001)
    result = await probe(sim.url(provider), provider=provider)
    assert result.ok, (result.error, result.detail)
    assert not result.tokens_from_usage
    assert result.output_tokens == result.content_chunks
    assert result.tpot is not None


@pytest.mark.parametrize("provider", ["openai", "anthropic", "tgi"])
@pytest.mark.parametrize("reason", ["rate_limited", "http_4xx", "http_5xx"])
async def test_errors_inside_a_stream_are_classified_as_unstreamed(
        start_sim: Start, provider: str, reason: str) -> None:
    """vLLM's `code`, Anthropic's error types and TGI's error_type map to the reason the same
    error gets as an HTTP status."""
    sim = await start_sim(fault="stream_error", error_reason=reason, ttft=0.0, itl=0.0)
    result = await probe(sim.url(provider), provider=provider)
    assert result.error == reason, (result.error, result.detail)
    assert result.status == 200
    assert "error in the response" in (result.detail or "")


async def test_an_ollama_stream_error_without_a_type_is_a_server_error(sim: SimServer) -> None:
    sim.settings.update({"fault": "stream_error", "ttft": 0.0, "itl": 0.0})
    result = await probe(sim.url("ollama"), provider="ollama")
    assert result.error == "http_5xx"


async def test_a_malformed_stream_stays_protocol(sim: SimServer) -> None:
    sim.settings.update({"fault": "malformed", "ttft": 0.0, "itl": 0.0})
    assert (await probe(sim.url())).error == "protocol"


@pytest.mark.parametrize("provider", ["openai", "anthropic", "ollama"])
@pytest.mark.parametrize("stream", [True, False])
async def test_another_model_answering_is_wrong_model(start_sim: Start, provider: str,
                                                      stream: bool) -> None:
    sim = await start_sim(model="real-model", ttft=0.0, itl=0.0)
    result = await probe(sim.url(provider), CAPITAL, provider=provider, model="wanted",
                         stream=stream)
    assert result.error == "wrong_model"
    assert result.served_model == "real-model"
    assert "real-model" in (result.detail or "")
    assert "served_model" in (result.hint or "")
    # The same server, told what it may answer with, or not to check, passes.
    ok = await probe(sim.url(provider), CAPITAL, provider=provider, model="wanted",
                     stream=stream, served_model="real-.*")
    assert ok.ok, (ok.error, ok.detail)
    unchecked = await probe(sim.url(provider), CAPITAL, provider=provider, model="wanted",
                            stream=stream, check_model=False)
    assert unchecked.ok


@pytest.mark.parametrize(("configured", "served"), [
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("claude-3-5-sonnet-latest", "claude-3-5-sonnet-20241022"),
    ("SmolLM2-135M-Instruct.Q4_1.gguf", "/models/SmolLM2-135M-Instruct.Q4_1.gguf"),
])
async def test_a_correct_configuration_never_reads_wrong_model(
        start_sim: Start, configured: str, served: str) -> None:
    sim = await start_sim(model=served, ttft=0.0, itl=0.0)
    result = await probe(sim.url(), CAPITAL, model=configured)
    assert result.ok, (result.error, result.detail)


async def test_the_end_of_sequence_chunk_is_not_coalescing(sim: SimServer) -> None:
    """vLLM counts the end-of-sequence token in usage and sends it as an empty chunk: still
    one token per chunk. Without the empty chunk the same usage would read as coalescing."""
    sim.settings.update({"eos_chunk": True, "ttft": 0.0, "itl": 0.0})
    result = await probe(sim.url())
    assert result.ok
    assert result.output_tokens == result.content_chunks + 1
    assert result.end_chunks == 1
    assert result.tokens_per_chunk == 1


async def test_a_rejected_key_is_masked_and_explained(sim: SimServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's message comes back (status, text) with the key masked, and a hint."""
    monkeypatch.setenv("VERDICT_KEY", SECRET)
    sim.settings.update({"fault": "http_401"})
    result = await probe(sim.url(), api_key_env="VERDICT_KEY")
    assert result.error == "http_4xx"
    assert result.status == 401
    assert result.detail is not None
    assert "Incorrect API key provided" in result.detail
    assert SECRET not in json.dumps(result.as_dict())
    assert SECRET[:12] not in result.detail  # no head of it either
    assert "key was rejected" in (result.hint or "")


async def test_an_unknown_model_lists_what_the_server_has(sim: SimServer) -> None:
    sim.settings.update({"fault": "unknown_model", "model": "served-one"})
    result = await probe(sim.url(), model="no-such-model")
    assert result.error == "http_4xx"
    assert "no-such-model" in (result.detail or "")
    assert result.hint == "model no-such-model not found; the server lists: served-one"


@pytest.mark.parametrize(("url_path", "hint"), [("", "should end at the API base"),
                                                ("/v1/v1", "no such route")])
async def test_a_wrong_url_gets_a_path_hint(sim: SimServer, url_path: str, hint: str) -> None:
    result = await probe(sim.base + url_path)
    assert result.error == "http_4xx"
    assert result.status == 404
    assert hint in (result.hint or "")


async def test_nothing_listening_says_so() -> None:
    result = await probe("http://127.0.0.1:9/v1")
    assert result.error == "connect"
    assert "Connect call failed" in (result.detail or "")
    assert "nothing listens" in (result.hint or "")


async def test_a_reasoning_model_is_served_with_request_shaping(sim: SimServer) -> None:
    """OpenAI reasoning models refuse max_tokens and temperature: each refusal names the
    setting that fixes it, and with both set the probe succeeds."""
    sim.settings.update({"fault": "reasoning_model", "ttft": 0.0, "itl": 0.0})
    refused = await probe(sim.url())
    assert refused.error == "http_4xx"
    assert "max_tokens_field: max_completion_tokens" in (refused.hint or "")
    refused = await probe(sim.url(), max_tokens_field="max_completion_tokens")
    assert "temperature: null" in (refused.hint or "")
    served = await probe(sim.url(), max_tokens_field="max_completion_tokens", temperature=None)
    assert served.ok, (served.error, served.detail)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_request_shaping_reaches_the_server(sim: SimServer, provider: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """system, headers (plain and from the environment), extra_body merged key by key."""
    monkeypatch.setenv("VERDICT_HEADER", "from-env")
    extra: dict[str, Any] = {"seed": 7, "chat_template_kwargs": {"enable_thinking": False}}
    result = await probe(sim.url(provider), provider=provider, system="Answer briefly.",
                         headers={"X-Plain": "plain", "X-Secret": {"env": "VERDICT_HEADER"}},
                         extra_body=extra)
    assert result.ok, (result.error, result.detail)
    assert sim.last is not None
    body = json.loads(sim.last.body)
    assert sim.last.headers["x-plain"] == "plain"
    assert sim.last.headers["x-secret"] == "from-env"
    assert body["seed"] == 7
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert "Answer briefly." in json.dumps(body)


async def test_extra_body_merges_into_nested_options(sim: SimServer) -> None:
    """Ollama's options: extra keys join num_predict and temperature, not replace them."""
    result = await probe(sim.url("ollama"), provider="ollama", keep_alive="5m",
                         extra_body={"options": {"num_ctx": 4096}, "think": False})
    assert result.ok
    assert sim.last is not None
    body = json.loads(sim.last.body)
    assert body["options"]["num_ctx"] == 4096
    assert body["options"]["num_predict"] == 64
    assert body["options"]["temperature"] == 0
    assert body["keep_alive"] == "5m"
    assert body["think"] is False


async def test_no_stream_options_and_no_temperature(sim: SimServer) -> None:
    result = await probe(sim.url(), stream_options=False, temperature=None)
    assert result.ok
    assert sim.last is not None
    body = json.loads(sim.last.body)
    assert "stream_options" not in body
    assert "temperature" not in body


async def test_a_server_that_echoes_the_model_is_checked_against_its_list(
        sim: SimServer) -> None:
    """llama-cpp-python names whatever model it is asked for; its /v1/models says what it
    serves. A model it does not list is wrong_model, and the list is asked once per TTL."""
    sim.settings.update({"model": "/models/served.gguf", "echo_model": True, "ttft": 0.0,
                         "itl": 0.0})
    wrong = make_endpoint(sim.url(), model="wanted")
    right = make_endpoint(sim.url(), model="served.gguf")
    listed = ListedModels()
    async with make_client(wrong) as client:
        first = await run_probe(client, wrong, CAPITAL, listed=listed)
        second = await run_probe(client, wrong, CAPITAL, listed=listed)
        unlisted = await run_probe(client, wrong, CAPITAL)  # without a list: the echo passes
    assert first.served_model == "wanted"  # the echo
    assert first.error == second.error == "wrong_model"
    assert "the server lists only: /models/served.gguf" in (first.detail or "")
    assert sim.model_lists == 1  # the second probe took the list from the cache
    assert unlisted.ok
    async with make_client(right) as client:
        served = await run_probe(client, right, CAPITAL, listed=ListedModels())
    assert served.ok, (served.error, served.detail)


async def test_header_secrets_and_keys_with_line_breaks_are_masked(
        sim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key file with a line break in it cannot be sent (h11 refuses the header and quotes
    it, escaped, in its message); the message is shown with every form of the key masked."""
    key_file = tmp_path / "key"
    key_file.write_text("Zq7firstLine0000\nZq7secondLine999\n")
    header_file = tmp_path / "header"
    header_file.write_text("Zq7header\nsecret42\n")
    result = await probe(sim.url(), api_key_file=str(key_file))
    assert result.error == "protocol"
    for part in ("Zq7firstLine0000", "Zq7secondLine999"):
        assert part not in json.dumps(result.as_dict())
    result = await probe(sim.url(), headers={"X-Team": {"file": str(header_file)}})
    assert result.error == "protocol"
    assert "Zq7header" not in json.dumps(result.as_dict())


async def test_a_key_file_gone_is_a_failed_probe_not_an_exception(
        sim: SimServer, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("Zq7key-value\n")
    endpoint = make_endpoint(sim.url(), api_key_file=str(key_file))
    key_file.unlink()
    async with make_client(endpoint) as client:
        result = await run_probe(client, endpoint, CAPITAL, listed=ListedModels())
    assert result.error == "protocol"
    assert "configured secret cannot be read" in (result.detail or "")
    assert "key: file not found" in (result.detail or "")
    assert sim.requests == 0


async def test_an_answer_too_deep_to_check_fails_its_check(sim: SimServer) -> None:
    """A JSON expectation on an answer nested past the recursion limit: check_failed."""
    sim.settings.update({"ttft": 0.0, "itl": 0.0})
    deep = Prompt.model_validate({"name": "json", "text": "say 1 + 1", "expect": {"json": True}})
    from llmmon.probe.checks import passes

    assert passes(deep.expect, "[" * 5000 + "]" * 5000) is False  # type: ignore[arg-type]
    result = await probe(sim.url(), deep)
    assert result.error == "check_failed"


async def test_lone_surrogates_from_a_server_stay_printable(serve: Serve) -> None:
    """A model name or message with a lone surrogate must not break the page or the table."""

    async def handler(request: Request) -> Response:
        body = json.dumps({"error": {"message": "bad \ud800 thing", "code": 503}}).encode()
        return Response(200, b"data: " + body + b"\n\n", {"Content-Type": "text/event-stream"})

    result = await probe(await serve(handler) + "/v1")
    assert result.error == "http_5xx"
    assert result.detail is not None
    result.detail.encode("utf-8")  # raises on a lone surrogate
    assert "bad ? thing" in result.detail
