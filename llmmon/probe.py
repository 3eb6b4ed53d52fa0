"""One synthetic request, measured: the probe owns the clock, the deadline and the errors.

Timestamps come from ``time.perf_counter_ns`` (CLOCK_MONOTONIC on Linux), taken the moment
a chunk of the body is handed over by the transport and before it is parsed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from llmmon.checks import passes
from llmmon.config import EndpointBase, Prompt
from llmmon.cost import cost_usd
from llmmon.providers import ProtocolError, get_provider
from llmmon.result import NS, ErrorReason, ProbeResult, StreamTiming, apply_events, read_headers

__all__ = ["ErrorReason", "ProbeResult", "run_probe"]

class _Trace:
    """Collects httpcore's trace events as monotonic nanosecond stamps."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self.clock = clock
        self.at: dict[str, int] = {}

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        self.at[name] = self.clock()

    def span(self, start: str, end: str) -> float | None:
        begin, finish = self.at.get(start + ".started"), self.at.get(end + ".complete")
        return (finish - begin) / NS if begin is not None and finish is not None else None

    def phases(self) -> dict[str, float]:
        sent = self.at.get("http11.send_request_body.complete")
        headers = self.at.get("http11.receive_response_headers.complete")
        spans = {
            # httpcore resolves the name inside connect_tcp, so connect includes DNS.
            "connect": self.span("connection.connect_tcp", "connection.connect_tcp"),
            "tls": self.span("connection.start_tls", "connection.start_tls"),
            "send": self.span("http11.send_request_headers", "http11.send_request_body"),
            "wait": (headers - sent) / NS if sent and headers else None,
        }
        if sent is not None:  # a reused connection had no connect or TLS phase at all
            spans["connect"] = spans["connect"] or 0.0
            spans["tls"] = spans["tls"] or 0.0
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
    clock: Callable[[], int] = time.perf_counter_ns,
) -> ProbeResult:
    """Run one probe under ``endpoint.timeout``; never raises for endpoint misbehaviour."""
    result = ProbeResult(endpoint.name, prompt.name)
    trace = _Trace(clock)
    start = clock()
    try:
        async with asyncio.timeout(endpoint.timeout):
            await _exchange(client, endpoint, prompt, result, trace)
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
    result.phases = trace.phases()
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
                    result: ProbeResult, trace: _Trace) -> None:
    max_bytes = endpoint.max_response_bytes
    provider = get_provider(endpoint)
    spec = provider.request(endpoint, prompt, endpoint.api_key())
    headers = {"Accept-Encoding": "identity", **spec.headers}
    request = client.build_request("POST", spec.url, json=spec.body, headers=headers,
                                   params=spec.params, extensions={"trace": trace})
    response = await client.send(request, stream=True)
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
            await _read_stream(response, provider.stream_decoder(endpoint), result, trace,
                               max_bytes)
        else:
            if "json" not in content_type:
                raise ProtocolError("unexpected content type")
            body = await _read_body(response, max_bytes)
            apply_events(result, provider.parse_body(endpoint, body), trace.clock(), None)
    except _TooLarge:
        result.error = "too_large"
    finally:
        await response.aclose()


async def _read_body(response: httpx.Response, max_bytes: int) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > max_bytes:
            raise _TooLarge
    return bytes(body)


async def _read_stream(response: httpx.Response, decoder: Any, result: ProbeResult,
                       trace: _Trace, max_bytes: int) -> None:
    clock, received = trace.clock, 0
    timing = StreamTiming(trace.at.get("http11.send_request_body.complete"))
    async for chunk in response.aiter_raw():
        at = clock()  # before any parsing: this is when the bytes were ours
        received += len(chunk)
        if received > max_bytes:
            raise _TooLarge
        apply_events(result, decoder.feed(chunk), at, timing)
    decoder.finish()
    if not result.tokens_from_usage:
        result.output_tokens = result.content_chunks or None
