"""One synthetic request, measured: the probe owns the clock, the deadline and the errors.

Timestamps are CLOCK_MONOTONIC nanoseconds. With llmmon's own network backend
(``transport.py``) a chunk's stamp is the kernel's receive time of its bytes and TTFT starts
just before the request's last byte is handed to ``send``; otherwise both are taken in
Python, the moment the transport hands a chunk over, before it is parsed.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from llmmon.checks import passes
from llmmon.config import EndpointBase, Prompt
from llmmon.cost import cost_usd
from llmmon.providers import ProtocolError, StreamDecoder, get_provider
from llmmon.result import NS, ErrorReason, ProbeResult, StreamTiming, apply_events, read_headers

__all__ = ["ErrorReason", "ProbeResult", "run_probe"]


class _Trace:
    """Collects httpcore's trace events as monotonic nanosecond stamps."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self.clock = clock
        self.at: dict[str, int] = {}
        self.stream: Any = None  # the response's network stream, once there is one

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        self.at[name] = self.clock()

    def span(self, start: str, end: str) -> float | None:
        begin, finish = self.at.get(start + ".started"), self.at.get(end + ".complete")
        return (finish - begin) / NS if begin is not None and finish is not None else None

    def phases(self, stream: Any) -> dict[str, float]:
        sent = self.at.get("http11.send_request_body.complete")
        headers = self.at.get("http11.receive_response_headers.complete")
        connect = self.span("connection.connect_tcp", "connection.connect_tcp")
        spans = {
            "connect": connect,
            "tls": self.span("connection.start_tls", "connection.start_tls"),
            "send": self.span("http11.send_request_headers", "http11.send_request_body"),
            "wait": (headers - sent) / NS if sent and headers else None,
        }
        # Only llmmon's backend times name resolution apart; httpx's own does it inside
        # connect_tcp (connections through a proxy), where DNS stays part of connect.
        if hasattr(stream, "dns_seconds"):
            spans["dns"] = stream.dns_seconds if connect is not None else None
            if connect is not None:
                spans["connect"] = connect - stream.dns_seconds
        if sent is not None:  # a reused connection had no DNS, connect or TLS phase at all
            for phase in ("dns", "connect", "tls"):
                if phase in spans and spans[phase] is None:
                    spans[phase] = 0.0
        return {k: v for k, v in spans.items() if v is not None}


def _status_reason(status: int) -> ErrorReason | None:
    if status == 429:
        return "rate_limited"
    if 400 <= status < 500:
        return "http_4xx"
    if status >= 500:
        return "http_5xx"
    if status >= 300:
        return "protocol"  # redirects are not followed: a key must never travel elsewhere
    return None


async def run_probe(
    client: httpx.AsyncClient,
    endpoint: EndpointBase,
    prompt: Prompt,
    *,
    clock: Callable[[], int] = time.monotonic_ns,
    decoder: StreamDecoder | None = None,
) -> ProbeResult:
    """Run one probe under ``endpoint.timeout``; never raises for endpoint misbehaviour.

    ``decoder`` replaces the provider's stream decoder (benchmarks wrap it to see raw bytes).
    """
    result = ProbeResult(endpoint.name, prompt.name)
    trace = _Trace(clock)
    start = clock()
    try:
        async with asyncio.timeout(endpoint.timeout):
            await _exchange(client, endpoint, prompt, result, trace, decoder)
    except TimeoutError:
        result.error = "timeout"
    except httpx.TimeoutException:
        result.error = "timeout"
    except (httpx.ConnectError, httpx.UnsupportedProtocol):
        result.error = "connect"
    except (httpx.HTTPError, ProtocolError):
        result.error = result.error or "protocol"
    end = clock()
    result.e2e = (end - start) / NS
    result.phases = trace.phases(trace.stream)
    result.finished_unix = time.time()
    result.cost_usd = cost_usd(getattr(endpoint, "pricing", None), result.prompt_tokens,
                               result.output_tokens)
    if result.ok and prompt.expect is not None:
        result.check_passed = passes(prompt.expect, result.text)
        if not result.check_passed:
            result.error = "check_failed"
    return result


class _TooLarge(Exception):
    pass


async def _exchange(client: httpx.AsyncClient, endpoint: EndpointBase, prompt: Prompt,
                    result: ProbeResult, trace: _Trace, decoder: StreamDecoder | None) -> None:
    max_bytes = endpoint.max_response_bytes
    provider = get_provider(endpoint)
    spec = provider.request(endpoint, prompt, endpoint.api_key())
    headers = {"Accept-Encoding": "identity", **spec.headers}
    request = client.build_request("POST", spec.url, json=spec.body, headers=headers,
                                   params=spec.params, extensions={"trace": trace})
    response = await client.send(request, stream=True)
    trace.stream = response.extensions.get("network_stream")
    try:
        result.status = response.status_code
        read_headers(result, response.headers)
        if reason := _status_reason(response.status_code):
            result.error = reason
            return
        content_type = response.headers.get("content-type", "")
        if endpoint.stream:
            if not content_type.startswith(provider.stream_content_types):
                raise ProtocolError("unexpected content type")
            decoder = decoder or provider.stream_decoder(endpoint)
            await _read_stream(response, decoder, result, trace, max_bytes)
        else:
            if "json" not in content_type:
                raise ProtocolError("unexpected content type")
            body = await _read_body(response, max_bytes)
            apply_events(result, provider.parse_body(endpoint, body), trace.clock(), None)
    except _TooLarge:
        result.error = "too_large"
    finally:
        await response.aclose()


async def _chunks(response: httpx.Response, max_bytes: int) -> AsyncIterator[bytes]:
    """The body as it arrives, decompressed if the server compressed it despite our asking
    for identity, and never more than ``max_bytes`` of decoded bytes: a gzip bomb stops at
    the cap without being inflated."""
    inflate = _decompressor(response.headers.get("content-encoding", ""))
    total = 0
    async for raw in response.aiter_raw():
        data = inflate(raw, max_bytes - total + 1) if inflate else raw
        total += len(data)
        if total > max_bytes:
            raise _TooLarge
        yield data


def _decompressor(encoding: str) -> Callable[[bytes, int], bytes] | None:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise ProtocolError("unsupported content encoding")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS)

    def inflate(data: bytes, limit: int) -> bytes:
        try:
            out = inflater.decompress(data, limit)
        except zlib.error:
            raise ProtocolError("corrupt compressed body") from None
        if inflater.unconsumed_tail:
            raise _TooLarge  # more would come out than the cap allows
        return out

    return inflate


async def _read_body(response: httpx.Response, max_bytes: int) -> bytes:
    return b"".join([chunk async for chunk in _chunks(response, max_bytes)])


async def _read_stream(response: httpx.Response, decoder: StreamDecoder, result: ProbeResult,
                       trace: _Trace, max_bytes: int) -> None:
    clock, stream = trace.clock, trace.stream
    stamped = getattr(stream, "last_rx_ns", None) is not None
    sent = getattr(stream, "last_tx_ns", None) or trace.at.get("http11.send_request_body.complete")
    timing = StreamTiming(sent)
    result.sent_ns = sent
    async for chunk in _chunks(response, max_bytes):
        # before any parsing: the kernel's receive stamp where there is one, else now
        at = stream.last_rx_ns if stamped else clock()
        apply_events(result, decoder.feed(chunk), at, timing)
    decoder.finish()
    if not result.tokens_from_usage:
        result.output_tokens = result.content_chunks or None
