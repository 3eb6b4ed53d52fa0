"""Every provider over real sockets against the simulator, which speaks each wire format,
and against recorded real-format streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from llmmon.config import Prompt
from llmmon.config.settings import Settings
from llmmon.daemon.httpserver import HTTPServer, Request, Response
from llmmon.probe.load import run_load
from llmmon.probe.run import run_probe
from llmmon.probe.transport import make_client
from llmmon.sim.simulator import SimSettings, Simulator

FIXTURES = Path(__file__).parent / "fixtures"
PROVIDERS = ["openai", "anthropic", "ollama", "tgi"]
COUNT = Prompt(name="count", text="Count from 1 to 10, separated by commas.")


def endpoint(provider: str, base: str, **kw: Any) -> Any:
    url = base + "/v1" if provider == "openai" else base
    data = {"name": "t", "provider": provider, "url": url, "model": "m", "timeout": "5s", **kw}
    return Settings(endpoints=[data]).endpoints[0]


@pytest.fixture
async def sim() -> AsyncIterator[tuple[Simulator, str]]:
    simulator = Simulator(SimSettings(ttft=0.03, itl=0.005))
    port = await simulator.start()
    yield simulator, f"http://127.0.0.1:{port}"
    await simulator.close()


async def probe(ep: Any, prompt: Prompt = COUNT) -> Any:
    async with make_client(ep) as client:
        return await run_probe(client, ep, prompt)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_streaming_probe_per_provider(sim: tuple[Simulator, str], provider: str) -> None:
    """Each provider streams the answer with exact usage tokens and tokens - 1 gaps."""
    result = await probe(endpoint(provider, sim[1]))
    assert result.ok, result.error
    assert result.text == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
    assert result.output_tokens == 10
    assert result.tokens_from_usage
    assert len(result.itl) == 9
    assert result.ttft is not None
    assert result.ttft >= 0.03


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_non_streaming_probe_per_provider(sim: tuple[Simulator, str], provider: str
                                                ) -> None:
    """Each provider's non-streamed response gives the answer and its token count."""
    result = await probe(endpoint(provider, sim[1], stream=False))
    assert result.ok, result.error
    assert result.text == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
    assert result.output_tokens == 10
    assert result.ttft is None


@pytest.mark.parametrize("provider", ["openai", "anthropic", "ollama"])
async def test_reasoning_tokens_are_timed_apart(sim: tuple[Simulator, str], provider: str
                                                ) -> None:
    """Thinking tokens start the clock for TTFT; the answer's first token is timed apart."""
    simulator, base = sim
    simulator.settings.reasoning_tokens = 4
    result = await probe(endpoint(provider, base, max_tokens=14))
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
async def test_simulated_faults_per_provider(sim: tuple[Simulator, str], provider: str,
                                             fault: str, reason: str) -> None:
    """Each fault the simulator can play ends every provider's probe with the same reason."""
    simulator, base = sim
    simulator.settings.fault = fault
    result = await probe(endpoint(provider, base))
    assert result.error == reason


async def test_retry_after_and_ratelimit_headers(sim: tuple[Simulator, str]) -> None:
    """A 429's Retry-After and the rate-limit headers are read into the result."""
    simulator, base = sim
    ok = await probe(endpoint("openai", base))
    assert ok.ratelimit_remaining == {"requests": 99.0, "tokens": 5000.0}
    simulator.settings.fault = "http_429"
    limited = await probe(endpoint("openai", base))
    assert limited.retry_after == 7.0


@pytest.mark.parametrize(
    ("expect", "passed"),
    [({"contains": "Paris"}, True), ({"contains": "paris"}, False),
     ({"contains": "paris", "ignore_case": True}, True), ({"regex": r"\bParis\.$"}, True),
     ({"equals": "The capital of France is Paris."}, True), ({"equals": "Paris"}, False),
     ({"contains": "Paris", "regex": "Lyon"}, False), ({"json": True}, False)],
)
async def test_answer_checks(sim: tuple[Simulator, str], expect: dict[str, Any],
                             passed: bool) -> None:
    """Expectations are checked on the answer; a failed check fails the probe."""
    prompt = Prompt.model_validate({"name": "capital", "text": "What is the capital of France?",
                                    "expect": expect})
    result = await probe(endpoint("openai", sim[1]), prompt)
    assert result.check_passed is passed
    assert result.error == (None if passed else "check_failed")


async def test_cost_from_prices(sim: tuple[Simulator, str]) -> None:
    """Cost is usage tokens times the configured prices per million."""
    ep = endpoint("anthropic", sim[1],
                  pricing={"input_per_million": 3.0, "output_per_million": 15.0})
    result = await probe(ep)
    assert result.prompt_tokens > 0
    expected = (result.prompt_tokens * 3.0 + result.output_tokens * 15.0) / 1e6
    assert result.cost_usd == pytest.approx(expected)


async def test_load_probe_is_bounded_and_concurrent(sim: tuple[Simulator, str]) -> None:
    """A load probe runs exactly N requests, C at a time, and reports throughput."""
    simulator, base = sim
    ep = endpoint("openai", base, load={"concurrency": 4, "requests": 12})
    async with make_client(ep, 4) as client:
        result = await run_load(client, ep, ep.load)
    assert simulator.requests == 12
    assert result.succeeded == 12
    assert result.output_tokens == 12 * 20  # the default prompt counts to 20
    # 12 requests of ~125 ms each (30 ms + 19 gaps of 5 ms), 4 at a time: 3 rounds, not 12.
    assert result.duration < 12 * 0.125 * 0.7
    assert result.requests_per_second == pytest.approx(12 / result.duration)
    assert result.ttft_quantiles[0] is not None


async def test_load_probe_stops_at_its_timeout(sim: tuple[Simulator, str]) -> None:
    """Requests left when the burst's time is up are not sent and count as failed."""
    simulator, base = sim
    simulator.settings.ttft = 0.5
    ep = endpoint("openai", base, load={"concurrency": 2, "requests": 10, "timeout": "700ms"})
    async with make_client(ep, 2) as client:
        result = await run_load(client, ep, ep.load)
    assert result.succeeded == 2
    assert result.error_ratio == pytest.approx(0.8)
    assert simulator.requests == 4  # two finished, two cancelled in flight, six never sent


@pytest.mark.parametrize(
    ("fixture", "provider", "text", "tokens"),
    [("openai_vllm_chat.sse", "openai", "Hello! How can I help?", 7),
     ("anthropic_messages.sse", "anthropic", "Hello there!", 5),
     ("ollama_chat.ndjson", "ollama", "Hi, how are you?", 6),
     ("tgi_generate_stream.sse", "tgi", "Hello world!", 4)],
)
async def test_recorded_real_format_streams(fixture: str, provider: str, text: str,
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
        result = await probe(endpoint(provider, f"http://127.0.0.1:{port}"))
    finally:
        await server.close()
    assert result.ok, result.error
    assert result.text == text
    assert result.output_tokens == tokens
