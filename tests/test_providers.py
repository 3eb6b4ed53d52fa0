"""Every provider over real sockets against the simulator, which speaks each wire format,
and against recorded real-format streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from llmmon.config import Prompt
from llmmon.daemon.httpserver import HTTPServer, Request, Response
from llmmon.probe.load import load_clients, run_load
from llmmon.sim.simulator import SimSettings, Simulator
from tests.conftest import SimServer, make_endpoint, probe, provider_url

FIXTURES = Path(__file__).parent / "fixtures"
PROVIDERS = ["openai", "anthropic", "ollama", "tgi"]

pytestmark = pytest.mark.sim(ttft=0.03, itl=0.005)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_streaming_probe_per_provider(sim: SimServer, provider: str) -> None:
    """Each provider streams the answer with exact usage tokens and tokens - 1 gaps."""
    result = await probe(sim.url(provider), provider=provider)
    assert result.ok, result.error
    assert result.text == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
    assert result.output_tokens == 10
    assert result.tokens_from_usage
    assert len(result.itl) == 9
    assert result.ttft is not None
    assert result.ttft >= 0.03


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_non_streaming_probe_per_provider(sim: SimServer, provider: str
                                                ) -> None:
    """Each provider's non-streamed response gives the answer and its token count."""
    result = await probe(sim.url(provider), provider=provider, stream=False)
    assert result.ok, result.error
    assert result.text == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
    assert result.output_tokens == 10
    assert result.ttft is None


@pytest.mark.parametrize("provider", ["openai", "anthropic", "ollama"])
async def test_reasoning_tokens_are_timed_apart(sim: SimServer, provider: str
                                                ) -> None:
    """Thinking tokens start the clock for TTFT; the answer's first token is timed apart."""
    sim.settings.reasoning_tokens = 4
    result = await probe(sim.url(provider), provider=provider, max_tokens=14)
    assert result.ok, result.error
    assert result.text == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
    assert result.output_tokens == 14
    assert len(result.itl) == 13
    assert result.ttft == result.time_to_first_reasoning
    assert result.time_to_first_answer is not None
    assert result.time_to_first_answer > result.ttft + 3 * 0.005


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("fault", "reason"),
                         [("truncate", "protocol"), ("malformed", "protocol"),
                          ("reset", "protocol"), ("http_429", "rate_limited"),
                          ("http_401", "http_4xx"), ("html", "protocol")])
async def test_simulated_faults_per_provider(sim: SimServer, provider: str,
                                             fault: str, reason: str) -> None:
    """Each fault the simulator can play ends every provider's probe with the same reason."""
    sim.settings.fault = fault
    result = await probe(sim.url(provider), provider=provider)
    assert result.error == reason


async def test_retry_after_and_ratelimit_headers(sim: SimServer) -> None:
    """A 429's Retry-After and the rate-limit headers are read into the result."""
    ok = await probe(sim.url())
    assert ok.ratelimit_remaining == {"requests": 99.0, "tokens": 5000.0}
    assert ok.ratelimit_limit == {"requests": 100.0, "tokens": 10000.0}
    sim.settings.fault = "http_429"
    limited = await probe(sim.url())
    assert limited.retry_after == 7.0


@pytest.mark.parametrize(
    ("expect", "passed"),
    [({"contains": "Paris"}, True), ({"contains": "paris"}, False),
     ({"contains": "paris", "ignore_case": True}, True), ({"regex": r"\bParis\.$"}, True),
     ({"equals": "The capital of France is Paris."}, True), ({"equals": "Paris"}, False),
     ({"contains": "Paris", "regex": "Lyon"}, False), ({"json": True}, False)],
)
async def test_answer_checks(sim: SimServer, expect: dict[str, Any],
                             passed: bool) -> None:
    """Expectations are checked on the answer; a failed check fails the probe."""
    prompt = Prompt.model_validate({"name": "capital", "text": "What is the capital of France?",
                                    "expect": expect})
    result = await probe(sim.url(), prompt)
    assert result.check_passed is passed
    assert result.error == (None if passed else "check_failed")


async def test_cost_from_prices(sim: SimServer) -> None:
    """Cost is usage tokens times the configured prices per million."""
    ep = make_endpoint(sim.url("anthropic"), "anthropic",
                       pricing={"input_per_million": 3.0, "output_per_million": 15.0})
    result = await probe(ep)
    assert result.prompt_tokens > 0
    expected = (result.prompt_tokens * 3.0 + result.output_tokens * 15.0) / 1e6
    assert result.cost_usd == pytest.approx(expected)


async def test_load_probe_is_bounded_and_concurrent(sim: SimServer) -> None:
    """A load probe runs exactly N requests, C at a time, and reports throughput."""
    ep = make_endpoint(sim.url(), load={"concurrency": 4, "requests": 12})
    assert ep.load is not None
    clients = load_clients(ep, ep.load)
    result = await run_load(clients, ep, ep.load)
    for client in clients:
        await client.aclose()
    assert result.concurrency == 4  # reached, one connection per stream
    assert sim.requests == 12
    assert result.succeeded == 12
    assert result.output_tokens == 12 * 20  # the default prompt counts to 20
    # 12 requests of ~125 ms each (30 ms + 19 gaps of 5 ms), 4 at a time: 3 rounds, not 12.
    assert result.duration < 12 * 0.125 * 0.7
    assert result.requests_per_second == pytest.approx(12 / result.duration)
    assert result.ttft_quantiles[0] is not None


async def test_load_probe_stops_at_its_timeout(serve: Any) -> None:
    """Requests left when the burst's time is up are not sent and count as failed.

    The first two requests are answered at once and every later one stalls for an hour, so
    the burst's 2 s is far more than the finished requests need and far less than the
    stalled ones would take: its end can only be the timeout."""
    simulator = Simulator(SimSettings(ttft=0.0, itl=0.0))  # its handler only, not started

    async def two_then_stall(request: Request) -> Response:
        if simulator.requests == 2:
            simulator.settings.fault = "hang"
        return await simulator.handle(request)

    ep = make_endpoint(await serve(two_then_stall),
                       load={"concurrency": 2, "requests": 10, "timeout": "2s"})
    assert ep.load is not None
    clients = load_clients(ep, ep.load)
    result = await run_load(clients, ep, ep.load)
    for client in clients:
        await client.aclose()
    assert result.succeeded == 2
    assert result.error_ratio == pytest.approx(0.8)
    assert simulator.requests == 4  # two finished, two cancelled in flight, six never sent
    assert 2.0 - 0.05 <= result.duration < 2.0 + 2.0  # cut at the timeout, not an hour later


@pytest.mark.parametrize(
    ("fixture", "provider", "model", "text", "tokens"),
    [("openai_vllm_chat.sse", "openai", "meta-llama/Llama-3.1-8B-Instruct",
      "Hello! How can I help?", 7),
     ("anthropic_messages.sse", "anthropic", "claude-sonnet-4-5", "Hello there!", 5),
     ("ollama_chat.ndjson", "ollama", "llama3.2", "Hi, how are you?", 6),
     ("tgi_generate_stream.sse", "tgi", "m", "Hello world!", 4)],
)
async def test_recorded_real_format_streams(fixture: str, provider: str, model: str, text: str,
                                            tokens: int) -> None:
    """Streams in the shape real servers send (ids, extra fields, pings) parse correctly."""
    body = (FIXTURES / fixture).read_bytes()
    content_type = "application/x-ndjson" if fixture.endswith("ndjson") else "text/event-stream"

    async def replay(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(body), 37):  # split mid-line, as networks do
                yield body[i : i + 37]

        return Response(200, headers={"Content-Type": content_type}, stream=chunks())

    server = HTTPServer(replay)
    port = await server.start("127.0.0.1", 0)
    try:
        result = await probe(provider_url(f"http://127.0.0.1:{port}", provider),
                             provider=provider, model=model)
    finally:
        await server.close()
    assert result.ok, (result.error, result.detail)
    assert result.text == text
    assert result.output_tokens == tokens
    # TGI's end-of-sequence event is counted, not read as coalescing; Anthropic does coalesce.
    assert result.tokens_per_chunk == (2.5 if provider == "anthropic" else 1)
    assert result.served_model == (None if provider == "tgi" else model)
