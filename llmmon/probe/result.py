"""``ProbeResult``: what one probe measured, as plain data shared by the daemon and
``llmmon probe``; and the folding of timestamped provider events into it."""

from __future__ import annotations

import email.utils
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

import httpx

from llmmon.probe.trace import NS
from llmmon.providers.base import (
    MAX_SERVER_SECONDS,
    Delta,
    EndOfSequence,
    Event,
    Served,
    ServerPhase,
    ServerTiming,
    Usage,
    server_timing,
)

# Why a probe failed: the `reason` label's values, and nothing else.
ErrorReason = Literal["timeout", "connect", "http_4xx", "rate_limited", "http_5xx", "protocol",
                      "too_large", "empty", "wrong_model", "check_failed"]
ERROR_REASONS: tuple[ErrorReason, ...] = get_args(ErrorReason)
# What each reason means, for docs/metrics.md (a test keeps every reason described).
REASON_MEANINGS: dict[ErrorReason, str] = {
    "timeout": "no complete answer within the endpoint's `timeout`",
    "connect": "no connection: refused, DNS, TLS handshake or certificate verification",
    "http_4xx": "a 4xx status, or an error the server sent inside a 200 response that it "
                "gives a 4xx unstreamed (TGI validation and generation errors, Anthropic "
                "invalid_request_error)",
    "rate_limited": "429, or an in-stream overload/rate-limit error (TGI overloaded, "
                    "Anthropic rate_limit_error)",
    "http_5xx": "a 5xx status, or an in-stream server error (vLLM's code 503, Anthropic "
                "overloaded_error, Ollama's error line)",
    "protocol": "a response that does not follow the API: wrong content type, malformed or "
                "truncated stream, redirect, or anything llmmon cannot digest",
    "too_large": "the response passed `max_response_bytes`",
    "empty": "a whole, well-formed response with no answer text (thinking only counts as "
             "empty): typical of a gateway whose upstream failed",
    "wrong_model": "the response names another model than the configured one (see "
                   "`check_model`, `served_model`)",
    "check_failed": "the answer does not meet the prompt's `expect`",
}
# Where the server says its time went (``server_timing``'s keys, and nothing else): waiting
# in its queue, reading the prompt, generating, loading the model, all of it, and the time a
# proxy in front of it waited for its upstream.
SERVER_PHASES: tuple[ServerPhase, ...] = get_args(ServerPhase)
# Servers' timing headers, in milliseconds: OpenAI's, an Envoy proxy's, and TGI's (its
# router/src/server.rs sends them on unstreamed responses only). TGI's x-inference-time is
# prefill and decode together, which no phase is.
TIMING_HEADERS: dict[str, ServerPhase] = {
    "openai-processing-ms": "total",
    "x-envoy-upstream-service-time": "upstream",
    "x-queue-time": "queue",
    "x-total-time": "total",
}
MAX_RETRY_AFTER = 3600.0  # a Retry-After beyond an hour is treated as an hour
# Rate-limit headers, OpenAI's and Anthropic's spellings, to a fixed `kind` label.
RATELIMIT_HEADERS = {
    "x-ratelimit-remaining-requests": "requests",
    "x-ratelimit-remaining-tokens": "tokens",
    "anthropic-ratelimit-requests-remaining": "requests",
    "anthropic-ratelimit-tokens-remaining": "tokens",
    "anthropic-ratelimit-input-tokens-remaining": "input_tokens",
    "anthropic-ratelimit-output-tokens-remaining": "output_tokens",
}
# The limits themselves, so that headroom is remaining / limit whatever the plan.
RATELIMIT_LIMIT_HEADERS = {
    "x-ratelimit-limit-requests": "requests",
    "x-ratelimit-limit-tokens": "tokens",
    "anthropic-ratelimit-requests-limit": "requests",
    "anthropic-ratelimit-tokens-limit": "tokens",
    "anthropic-ratelimit-input-tokens-limit": "input_tokens",
    "anthropic-ratelimit-output-tokens-limit": "output_tokens",
}


@dataclass
class ProbeResult:
    endpoint: str
    prompt: str
    error: ErrorReason | None = None
    detail: str | None = None  # what went wrong, in the server's words where it gave some
    hint: str | None = None  # what to do about it, where llmmon knows
    status: int | None = None
    ttft: float | None = None  # to the first generated token, reasoning or answer
    time_to_first_reasoning: float | None = None
    time_to_first_answer: float | None = None
    e2e: float | None = None
    itl: list[float] = field(default_factory=list)
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    tokens_from_usage: bool = False  # else counted from chunks, and prompt tokens unknown
    cached_tokens: int | None = None  # prompt tokens read from the server's prompt cache
    cache_write_tokens: int | None = None  # prompt tokens written to it (Anthropic)
    served_model: str | None = None  # the model the response names
    content_chunks: int = 0
    end_chunks: int = 0  # chunks carrying only the end-of-sequence token
    phases: dict[str, float] = field(default_factory=dict)
    # The kernel's smoothed round-trip time of the probe's connection (TCP_INFO), seconds:
    # the network's share, to set against the server's own timing below.
    rtt: float | None = None
    # Seconds the server says it spent, by phase (SERVER_PHASES), where it says so.
    server_timing: dict[str, float] = field(default_factory=dict)
    check_passed: bool | None = None  # None: the prompt has no expectation, or no answer came
    cost_usd: float = 0.0
    ratelimit_remaining: dict[str, float] = field(default_factory=dict)
    ratelimit_limit: dict[str, float] = field(default_factory=dict)
    retry_after: float | None = None
    text: str = ""
    # Answer pieces not yet joined into ``text`` (``flush_text``): appending to a str that
    # grows by thousands of one-character events would copy it each time.
    parts: list[str] = field(default_factory=list, repr=False)
    finished_unix: float = 0.0
    sent_ns: int | None = None  # CLOCK_MONOTONIC when the request's last byte went out
    ended_ns: int | None = None  # CLOCK_MONOTONIC when a stream's last byte came (its stamp)
    retried: bool = False  # asked again: a reused connection was closed as it was reused

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def tpot(self) -> float | None:
        """vLLM's time per output token: (e2e - ttft) / (output tokens - 1)."""
        if self.ttft is None or self.e2e is None or not self.output_tokens:
            return None
        return (self.e2e - self.ttft) / (self.output_tokens - 1) if self.output_tokens > 1 else None

    @property
    def tokens_per_second(self) -> float | None:
        tpot = self.tpot
        return 1.0 / tpot if tpot else None

    @property
    def tokens_per_chunk(self) -> float | None:
        """Output tokens per content chunk. A server that counts the end-of-sequence token in
        its usage but sends it as an empty chunk (vLLM, TGI, SGLang) still reads 1."""
        if not self.content_chunks or not self.output_tokens or not self.tokens_from_usage:
            return None
        tokens = self.output_tokens
        if self.end_chunks and tokens > self.content_chunks:
            tokens -= 1
        return tokens / self.content_chunks

    def flush_text(self) -> str:
        if self.parts:
            self.text += "".join(self.parts)
            self.parts.clear()
        return self.text

    def as_dict(self) -> dict[str, Any]:
        self.flush_text()
        out = asdict(self)
        out.pop("parts")
        out.update(ok=self.ok, tpot=self.tpot, tokens_per_second=self.tokens_per_second,
                   tokens_per_chunk=self.tokens_per_chunk, accounting=self.accounting)
        return out

    @property
    def accounting(self) -> str | None:
        """Where the token counts (and so the cost) come from, when it is not the server."""
        if self.tokens_from_usage or not self.content_chunks:
            return None
        return ("no usage from the server: output tokens counted from the stream's chunks, "
                "prompt tokens unknown, so cost covers output tokens only")


@dataclass
class StreamTiming:
    sent: int | None  # when the request's last byte went to the socket: TTFT starts here
    last: int | None = None


def apply_events(result: ProbeResult, events: list[Event], at: int,
                 timing: StreamTiming | None) -> None:
    """Fold one chunk's events into the result; ``at`` is the chunk's arrival stamp.

    Every generated-token event counts, reasoning included (a decode step is a decode step),
    so events that arrived in one read give a gap of 0: that is what the client saw, and it
    keeps ITL observations at events - 1. ``timing`` is None for a response that was not
    streamed."""
    for event in events:
        if not isinstance(event, Delta):  # text first: nearly every event is a Delta
            _apply_other(result, event, timing)
            continue
        if not event.reasoning:
            result.parts.append(event.text)
        if timing is None:
            continue
        result.content_chunks += 1
        since_sent = (at - timing.sent) / NS if timing.sent is not None else None
        if timing.last is not None:
            result.itl.append((at - timing.last) / NS)
        else:
            result.ttft = since_sent
        if event.reasoning and result.time_to_first_reasoning is None:
            result.time_to_first_reasoning = since_sent
        elif not event.reasoning and result.time_to_first_answer is None:
            result.time_to_first_answer = since_sent
        timing.last = at


def _apply_other(result: ProbeResult, event: Event, timing: StreamTiming | None) -> None:
    if isinstance(event, Usage):
        _apply_usage(result, event)
    elif isinstance(event, Served):
        if result.served_model is None:  # shown as text: no lone surrogates
            result.served_model = event.model[:1000].encode("utf-8", "replace").decode()
    elif isinstance(event, EndOfSequence):
        result.end_chunks += timing is not None
    # A timing is checked again here: whatever decoder made it, labels and values stay sane.
    elif (isinstance(event, ServerTiming) and event.phase in SERVER_PHASES
          and 0 <= event.seconds <= MAX_SERVER_SECONDS):
        result.server_timing[event.phase] = event.seconds


def _apply_usage(result: ProbeResult, usage: Usage) -> None:
    if usage.prompt_tokens is not None:
        result.prompt_tokens = usage.prompt_tokens
    if usage.output_tokens is not None:
        result.output_tokens = usage.output_tokens
        result.tokens_from_usage = True
    if usage.cached_tokens is not None:
        result.cached_tokens = usage.cached_tokens
    if usage.cache_write_tokens is not None:
        result.cache_write_tokens = usage.cache_write_tokens


def read_headers(result: ProbeResult, headers: httpx.Headers) -> None:
    """Rate-limit state, Retry-After and the server's timing, from whichever spelling the
    server uses."""
    for name, kind in RATELIMIT_HEADERS.items():
        value = _number(headers.get(name))
        if value is not None:
            result.ratelimit_remaining[kind] = value
    for name, kind in RATELIMIT_LIMIT_HEADERS.items():
        value = _number(headers.get(name))
        if value is not None and value > 0:
            result.ratelimit_limit[kind] = value
    result.retry_after = retry_after(headers.get("retry-after"))
    for name, phase in TIMING_HEADERS.items():
        apply_events(result, server_timing(phase, _number(headers.get(name)), 1e-3), 0, None)


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), capped."""
    if not value:
        return None
    seconds = _number(value)
    if seconds is None:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None
