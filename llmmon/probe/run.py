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

import httpx

from llmmon.config import EndpointConfig, Prompt
from llmmon.probe.checks import passes
from llmmon.probe.cost import cost_usd
from llmmon.probe.result import ErrorReason, ProbeResult, StreamTiming, apply_events, read_headers
from llmmon.probe.trace import NS, Trace
from llmmon.providers import get_provider
from llmmon.providers.base import ProtocolError, StreamDecoder


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
    endpoint: EndpointConfig,
    prompt: Prompt,
    *,
    decoder: StreamDecoder | None = None,
) -> ProbeResult:
    """Run one probe under ``endpoint.timeout``; never raises for endpoint misbehaviour.

    ``decoder`` replaces the provider's stream decoder (benchmarks wrap it to see raw bytes).
    """
    result = ProbeResult(endpoint.name, prompt.name)
    trace = Trace()
    start = time.monotonic_ns()
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
    result.e2e = (time.monotonic_ns() - start) / NS
    result.phases = trace.phases()
    result.finished_unix = time.time()
    result.cost_usd = cost_usd(endpoint.pricing, result.prompt_tokens,
                               result.output_tokens)
    if result.ok and prompt.expect is not None:
        result.check_passed = passes(prompt.expect, result.text)
        if not result.check_passed:
            result.error = "check_failed"
    return result


class _TooLarge(Exception):
    pass


async def _exchange(client: httpx.AsyncClient, endpoint: EndpointConfig, prompt: Prompt,
                    result: ProbeResult, trace: Trace, decoder: StreamDecoder | None) -> None:
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
            apply_events(result, provider.parse_body(endpoint, body), time.monotonic_ns(), None)
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
                       trace: Trace, max_bytes: int) -> None:
    stamped = trace.stamped
    sent = (stamped.last_tx_ns if stamped else None) \
        or trace.at.get("http11.send_request_body.complete")
    timing = StreamTiming(sent)
    result.sent_ns = sent
    async for chunk in _chunks(response, max_bytes):
        # before any parsing: the kernel's receive stamp where there is one, else now
        at = stamped.last_rx_ns if stamped and stamped.last_rx_ns else time.monotonic_ns()
        apply_events(result, decoder.feed(chunk), at, timing)
    decoder.finish()
    if not result.tokens_from_usage:
        result.output_tokens = result.content_chunks or None
