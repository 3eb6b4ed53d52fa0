"""Network versus server time: the kernel's round-trip time of the probe's own connection, and
the time servers say they spent (timing headers, llama-server's ``timings``, Ollama's
durations), folded into fixed phases, with anything implausible ignored."""

from __future__ import annotations

import asyncio
import json
import math
import re
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import httpx
import pytest
import trustme

from llmmon.probe import backend
from llmmon.probe.backend import StampedStream, StampingBackend, TLSStream
from llmmon.probe.result import SERVER_PHASES, ProbeResult, apply_events, read_headers
from llmmon.probe.trace import Trace
from llmmon.providers.anthropic import _StreamDecoder as AnthropicDecoder
from llmmon.providers.base import Event, ServerPhase, ServerTiming, StreamDecoder, server_timing
from llmmon.providers.ollama import Ollama, OllamaConfig
from llmmon.providers.ollama import _StreamDecoder as OllamaDecoder
from llmmon.providers.openai import OpenAI, OpenAIConfig
from llmmon.providers.openai import _StreamDecoder as OpenAIDecoder
from llmmon.providers.tgi import _StreamDecoder as TGIDecoder
from tests.conftest import SimProcess, SimServer, make_endpoint, probe

pytestmark = pytest.mark.sim(ttft=0.05, itl=0.01)
linux_only = pytest.mark.skipif(sys.platform != "linux", reason="TCP_INFO is Linux's")


def fold(events: list[Event], headers: dict[str, str] | None = None) -> ProbeResult:
    """A result with the headers read and the events folded, as a probe does."""
    result = ProbeResult("e", "p")
    read_headers(result, httpx.Headers(headers or {}))
    apply_events(result, events, 0, None)
    result.flush_text()
    assert set(result.server_timing) <= set(SERVER_PHASES)
    return result


def decoded(decoder: StreamDecoder, data: bytes) -> ProbeResult:
    events = decoder.feed(data)
    decoder.finish()
    return fold(events)


def sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def test_server_phases_are_a_fixed_set() -> None:
    assert SERVER_PHASES == ("queue", "prefill", "decode", "load", "total", "upstream")


# --- llama-server's timings (OpenAI-compatible API) ------------------------------------

# The shape of llama-server's final chunk (tools/server/server-task.cpp): usage, and timings
# on the same chunk; cache_n prompt tokens came from its prompt cache.
TIMINGS = {"cache_n": 16, "prompt_n": 5, "prompt_ms": 48.5, "prompt_per_token_ms": 9.7,
           "prompt_per_second": 103.09, "predicted_n": 10, "predicted_ms": 230.25,
           "predicted_per_token_ms": 23.025, "predicted_per_second": 43.43}


def llama_stream(timings: Any, usage: dict[str, Any] | None = None) -> bytes:
    final = {"choices": [], "created": 1, "id": "c", "model": "m",
             "object": "chat.completion.chunk", "timings": timings,
             "usage": usage or {"completion_tokens": 10, "prompt_tokens": 21,
                                "total_tokens": 31}}
    token = {"choices": [{"index": 0, "delta": {"content": "Hi"}}], "model": "m"}
    return sse(token) + sse(final) + b"data: [DONE]\n\n"


def test_llama_server_timings_in_the_last_chunk() -> None:
    result = decoded(OpenAIDecoder(), llama_stream(TIMINGS))
    assert result.server_timing == {"prefill": pytest.approx(0.0485),
                                    "decode": pytest.approx(0.23025)}
    assert result.cached_tokens == 16  # cache_n, since the usage names none
    assert result.prompt_tokens == 21
    assert result.output_tokens == 10


def test_usage_cached_tokens_win_over_cache_n() -> None:
    usage = {"completion_tokens": 10, "prompt_tokens": 21,
             "prompt_tokens_details": {"cached_tokens": 8}}
    assert decoded(OpenAIDecoder(), llama_stream(TIMINGS, usage)).cached_tokens == 8


def test_llama_server_timings_in_a_whole_response() -> None:
    body = {"choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Hi"}}],
            "model": "m", "usage": {"completion_tokens": 1, "prompt_tokens": 3},
            "timings": {**TIMINGS, "cache_n": 0}}
    endpoint = cast(OpenAIConfig, make_endpoint("http://x/v1", stream=False))
    result = fold(OpenAI().parse_body(endpoint, json.dumps(body).encode()))
    assert result.server_timing == {"prefill": pytest.approx(0.0485),
                                    "decode": pytest.approx(0.23025)}
    assert result.cached_tokens == 0
    assert result.text == "Hi"


# JSON texts no timing may come from: negative, strings, NaN and infinities (Python's json
# reads them), beyond a day, a 401-digit integer, other types.
JUNK = ["-1", "-0.001", '"12"', '"NaN"', "NaN", "Infinity", "-Infinity", "1e999", "1e300",
        "1" + "0" * 400, "null", "true", "[5]", '{"ms": 5}']


@pytest.mark.parametrize("junk", JUNK)
def test_implausible_llama_timings_are_ignored(junk: str) -> None:
    text = llama_stream({"prompt_ms": "JUNK", "predicted_ms": "JUNK", "cache_n": "JUNK"})
    result = decoded(OpenAIDecoder(), text.replace(b'"JUNK"', junk.encode()))
    assert result.server_timing == {}
    assert result.cached_tokens is None
    assert result.output_tokens == 10  # the rest of the chunk still counts
    assert result.text == "Hi"


@pytest.mark.parametrize("timings", [None, "fast", [1, 2], 5,
                                     {"queue_ms": 3, "load_ms": 7, "total_ms": 9, "t_ms": 1}])
def test_timings_that_are_no_object_or_name_no_phase_are_ignored(timings: Any) -> None:
    result = decoded(OpenAIDecoder(), llama_stream(timings))
    assert result.server_timing == {}
    assert result.output_tokens == 10


# --- Ollama's durations ----------------------------------------------------------------

# docs.ollama.com/api/usage's example: nanoseconds, on the last line only.
OLLAMA_DONE = {"model": "m", "created_at": "2025-10-17T23:14:07.414671Z",
               "message": {"role": "assistant", "content": ""}, "done": True,
               "done_reason": "stop", "total_duration": 174560334, "load_duration": 101397084,
               "prompt_eval_count": 11, "prompt_eval_duration": 13074791, "eval_count": 18,
               "eval_duration": 52479709}
OLLAMA_TOKEN = {"model": "m", "message": {"role": "assistant", "content": "Hi"}, "done": False}


def ollama_stream(last: dict[str, Any]) -> bytes:
    return (json.dumps(OLLAMA_TOKEN) + "\n" + json.dumps(last) + "\n").encode()


def test_ollama_durations_in_the_last_line() -> None:
    result = decoded(OllamaDecoder(), ollama_stream(OLLAMA_DONE))
    assert result.server_timing == {"total": pytest.approx(0.174560334),
                                    "load": pytest.approx(0.101397084),
                                    "prefill": pytest.approx(0.013074791),
                                    "decode": pytest.approx(0.052479709)}
    assert (result.prompt_tokens, result.output_tokens) == (11, 18)


def test_ollama_durations_unstreamed() -> None:
    endpoint = cast(OllamaConfig, make_endpoint("http://x", "ollama", stream=False))
    result = fold(Ollama().parse_body(endpoint, json.dumps(OLLAMA_DONE).encode()))
    assert result.server_timing["decode"] == pytest.approx(0.052479709)
    assert len(result.server_timing) == 4


@pytest.mark.parametrize("junk", [*JUNK, str(86_400 * 10**9 + 1)])
def test_implausible_ollama_durations_are_ignored(junk: str) -> None:
    last = {**OLLAMA_DONE, "total_duration": "JUNK", "load_duration": "JUNK",
            "prompt_eval_duration": "JUNK", "eval_duration": "JUNK", "queue_duration": 5}
    text = ollama_stream(last).replace(b'"JUNK"', junk.encode())
    result = decoded(OllamaDecoder(), text)
    assert result.server_timing == {}
    assert (result.prompt_tokens, result.output_tokens) == (11, 18)


def test_anthropic_and_tgi_streams_carry_no_timing() -> None:
    """They send none: none is invented."""
    anthropic = (b'event: message_start\ndata: {"type":"message_start","message":{"model":"m",'
                 b'"usage":{"input_tokens":3}}}\n\n'
                 b'data: {"type":"content_block_delta","delta":{"type":"text_delta",'
                 b'"text":"Hi"}}\n\n'
                 b'data: {"type":"message_delta","usage":{"output_tokens":1}}\n\n'
                 b'data: {"type":"message_stop"}\n\n')
    tgi = (b'data: {"token":{"text":"Hi","special":false},"generated_text":null}\n\n'
           b'data: {"token":{"text":"</s>","special":true},"generated_text":"Hi",'
           b'"details":{"generated_tokens":2,"input_length":3}}\n\n')
    assert decoded(AnthropicDecoder(), anthropic).server_timing == {}
    assert decoded(TGIDecoder(), tgi).server_timing == {}


# --- timing headers --------------------------------------------------------------------


@pytest.mark.parametrize(("header", "value", "phase", "seconds"), [
    ("openai-processing-ms", "250", "total", 0.25),
    ("x-envoy-upstream-service-time", "37", "upstream", 0.037),
    ("x-queue-time", "12", "queue", 0.012),  # TGI's router, server.rs: as_millis
    ("x-total-time", " 140 ", "total", 0.14),
    ("OpenAI-Processing-Ms", "0.5", "total", 0.0005),
])
def test_timing_headers(header: str, value: str, phase: str, seconds: float) -> None:
    assert fold([], {header: value}).server_timing == {phase: pytest.approx(seconds)}


def test_headers_naming_no_phase_are_ignored() -> None:
    """TGI's inference time is prefill and decode together: no phase of its own."""
    headers = {"x-inference-time": "100", "x-validation-time": "1", "x-time-per-token": "9",
               "x-foo-time": "5", "server-timing": "total;dur=5", "x-queue-ms": "3"}
    assert fold([], headers).server_timing == {}


@pytest.mark.parametrize("junk", ["-1", "NaN", "nan", "inf", "-inf", "1e400", "1" + "0" * 400,
                                  "abc", "", "12ms", "86400001", "0x10"])
def test_implausible_timing_headers_are_ignored(junk: str) -> None:
    headers = {"x-queue-time": junk, "x-total-time": junk, "openai-processing-ms": junk,
               "x-envoy-upstream-service-time": junk, "x-ratelimit-remaining-requests": "9"}
    result = fold([], headers)
    assert result.server_timing == {}
    assert result.ratelimit_remaining == {"requests": 9.0}


@pytest.mark.parametrize("junk", [-1, -1e-9, math.nan, math.inf, 86_401, 10**400, True, "1",
                                  None, [1]])
def test_server_timing_takes_only_plausible_numbers(junk: object) -> None:
    assert server_timing("total", junk, 1.0) == []
    assert server_timing("total", 1500, 1e-3) == [ServerTiming("total", 1.5)]
    assert server_timing("load", 0, 1e-9) == [ServerTiming("load", 0.0)]


def test_the_fold_keeps_labels_and_values_sane() -> None:
    """Whatever decoder made the events: no unknown phase, no implausible value."""
    odd = [ServerTiming(cast(ServerPhase, "tokenize"), 1.0), ServerTiming("total", -1.0),
           ServerTiming("total", math.nan), ServerTiming("load", math.inf),
           ServerTiming("decode", 86_400.5)]
    assert fold(cast(list[Event], odd)).server_timing == {}
    assert fold([ServerTiming("queue", 0.0)]).server_timing == {"queue": 0.0}


# --- the kernel's round-trip time ------------------------------------------------------


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@linux_only
async def test_rtt_of_a_loopback_connection(echo_port: int) -> None:
    stream = await StampingBackend().connect_tcp("127.0.0.1", echo_port, timeout=5)
    assert isinstance(stream, StampedStream)
    await stream.write(b"ping", timeout=5)
    assert await stream.read(1024, timeout=5) == b"ping"
    rtt = stream.rtt_seconds()
    assert rtt is not None
    assert 0 < rtt < 1
    tls = TLSStream(stream, ssl.create_default_context(), "localhost")
    tls_rtt = tls.rtt_seconds()  # the raw connection's
    assert tls_rtt is not None
    assert 0 < tls_rtt < 1
    await stream.aclose()
    assert stream.rtt_seconds() is None
    assert tls.rtt_seconds() is None


async def test_rtt_is_none_off_linux(echo_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = await StampingBackend().connect_tcp("127.0.0.1", echo_port, timeout=5)
    assert isinstance(stream, StampedStream)
    monkeypatch.setattr(backend, "_TCP_INFO", None)
    try:
        assert stream.rtt_seconds() is None
    finally:
        await stream.aclose()


@linux_only
async def test_rtt_is_none_before_a_sample_and_on_error() -> None:
    unconnected = socket.socket()  # TCP_INFO answers, with no RTT measured: 0
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # TCP_INFO fails
    try:
        assert StampedStream(unconnected, 0.0).rtt_seconds() is None
        assert StampedStream(udp, 0.0).rtt_seconds() is None
    finally:
        unconnected.close()
        udp.close()


def test_trace_has_no_rtt_without_llmmons_stream() -> None:
    trace = Trace()
    assert trace.rtt() is None
    trace.stream = object()  # another backend's stream
    assert trace.rtt() is None


# --- end to end, against the simulator -------------------------------------------------

StartSim = Callable[..., Awaitable[SimServer]]


def assert_rtt(result: ProbeResult) -> None:
    if sys.platform == "linux":
        assert result.rtt is not None
        assert 0 < result.rtt < 1
    assert set(result.server_timing) <= set(SERVER_PHASES)


@pytest.mark.parametrize("kw", [{}, {"api": "completions"}, {"stream": False}])
async def test_probe_of_an_openai_style_server(sim: SimServer, kw: dict[str, Any]) -> None:
    """The simulator times like llama-server: its wait before the first token is prefill."""
    result = await probe(sim.url(), **kw)
    assert result.ok, result.detail
    assert_rtt(result)
    assert result.server_timing == {"prefill": pytest.approx(0.05),
                                    "decode": pytest.approx(9 * 0.01)}
    if result.ttft is not None:  # what the probe saw includes what the server spent
        assert result.ttft > result.server_timing["prefill"]
    assert result.cached_tokens == 0  # from cache_n: the simulator's usage names none


async def test_probe_of_ollama(sim: SimServer) -> None:
    result = await probe(sim.url("ollama"), provider="ollama")
    assert result.ok, result.detail
    assert_rtt(result)
    assert result.server_timing == {"total": pytest.approx(0.14), "load": 0.0,
                                    "prefill": pytest.approx(0.05),
                                    "decode": pytest.approx(0.09)}


async def test_probe_of_tgi(sim: SimServer) -> None:
    """TGI's timing headers come on /generate; a stream's headers leave before it is known."""
    whole = await probe(sim.url("tgi"), provider="tgi", stream=False)
    assert whole.ok, whole.detail
    assert_rtt(whole)
    assert whole.server_timing == {"queue": 0.0, "total": pytest.approx(0.14, abs=0.0015)}
    streamed = await probe(sim.url("tgi"), provider="tgi")
    assert streamed.ok
    assert_rtt(streamed)
    assert streamed.server_timing == {}


async def test_probe_of_anthropic_has_rtt_and_no_invented_timing(sim: SimServer) -> None:
    result = await probe(sim.url("anthropic"), provider="anthropic")
    assert result.ok, result.detail
    assert_rtt(result)
    assert result.server_timing == {}


async def test_rtt_of_a_failed_probe(sim: SimServer) -> None:
    sim.settings.fault = "malformed"
    result = await probe(sim.url())
    assert result.error == "protocol"
    assert_rtt(result)


async def test_rtt_when_the_server_closes_after_the_stream() -> None:
    """As llama-server does: the connection is shut as the body ends, before the probe is
    done with the response, so the RTT must have been read before."""
    async def answer_and_close(reader: asyncio.StreamReader,
                               writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
        await reader.readexactly(int(length.group(1)) if length else 0)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Connection: close\r\n\r\n" + llama_stream(TIMINGS))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer_and_close, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        result = await probe(f"http://127.0.0.1:{port}/v1")
    finally:
        server.close()
        await server.wait_closed()
    assert result.ok, result.detail
    assert_rtt(result)
    assert set(result.server_timing) == {"prefill", "decode"}


async def test_rtt_over_tls(start_sim: StartSim, tmp_path: Any) -> None:
    authority = trustme.CA()
    authority.cert_pem.write_to_path(str(ca_path := tmp_path / "ca.pem"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    sim = await start_sim(ssl_context=context)
    result = await probe(make_endpoint(sim.url(), tls_config={"ca_file": str(ca_path)}))
    assert result.ok, result.detail
    assert result.phases["tls"] > 0
    assert_rtt(result)
    assert set(result.server_timing) == {"prefill", "decode"}


async def test_probe_of_a_simulator_process(simulator_process: SimProcess) -> None:
    """Over a real server process (30 ms to the first token, 5 ms between tokens)."""
    result = await probe(simulator_process.base)
    assert result.ok, result.detail
    assert_rtt(result)
    assert result.server_timing == {"prefill": pytest.approx(0.03),
                                    "decode": pytest.approx(9 * 0.005)}
