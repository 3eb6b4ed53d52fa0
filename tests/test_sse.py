"""The SSE parser and the OpenAI stream decoder, on byte literals split every way."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmmon.providers.base import Delta, ProtocolError, Usage
from llmmon.providers.openai import _StreamDecoder
from llmmon.providers.sse import SSEError, SSEEvent, SSEParser

STREAM = (
    b"\xef\xbb\xbf: keep-alive comment\r\n"
    b"data: first\r\n\r\n"
    b"event: custom\ndata: line one\ndata:line two\n\n"
    b"id: 7\nretry: 100\n\n"
    b"data: cr only\r\r"
    b"data: {\"a\": 1}\n\n"
)
EXPECTED = [
    SSEEvent("message", "first"),
    SSEEvent("custom", "line one\nline two"),
    SSEEvent("message", "cr only"),
    SSEEvent("message", '{"a": 1}'),
]


def feed_split(data: bytes, cuts: list[int]) -> list[SSEEvent]:
    parser, events, last = SSEParser(), [], 0
    for cut in [*sorted(set(cuts)), len(data)]:
        events += parser.feed(data[last:cut])
        last = cut
    return events


def test_parses_comments_crlf_multiline_and_bom() -> None:
    """Comments and id/retry are skipped; CRLF, LF and CR all end lines; data lines join."""
    assert SSEParser().feed(STREAM) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=20))
def test_result_does_not_depend_on_chunking(cuts: list[int]) -> None:
    """The same bytes give the same events however the network splits them."""
    assert feed_split(STREAM, cuts) == EXPECTED


def test_byte_at_a_time() -> None:
    """Feeding one byte at a time (a CRLF split in the middle included) gives the same events."""
    assert feed_split(STREAM, list(range(len(STREAM)))) == EXPECTED


@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0, max_value=2000), max_size=8))
def test_arbitrary_bytes_never_raise_unexpectedly(data: bytes, cuts: list[int]) -> None:
    """Any byte stream parses (invalid UTF-8 is replaced) and chunking does not matter."""
    cuts = [c for c in cuts if c <= len(data)]
    assert feed_split(data, cuts) == SSEParser().feed(data)


def test_overlong_line_is_an_error() -> None:
    """A line without end that grows past the cap stops the parse instead of eating memory."""
    parser = SSEParser()
    for _ in range(10):
        parser.feed(b"x" * 100_000)
    with pytest.raises(SSEError):
        parser.feed(b"x" * 100_000)


CHAT_STREAM = (
    b'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n'
    b'data: {"choices":[{"delta":{"reasoning_content":"hmm"}}]}\n\n'
    b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n'
    b'data: {"choices":[{"delta":{"content":"lo"}}]}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}\n\n'
    b"data: [DONE]\n\n"
)


def test_openai_stream_events() -> None:
    """Role-only chunks give nothing; reasoning is marked; usage arrives last."""
    decoder = _StreamDecoder()
    events = decoder.feed(CHAT_STREAM)
    decoder.finish()
    assert events == [Delta("hmm", reasoning=True), Delta("Hel"), Delta("lo"), Usage(5, 2)]


@pytest.mark.parametrize(
    "stream",
    [
        b"data: {not json}\n\n",
        b'data: {"error": {"message": "overloaded"}}\n\n',
        b'data: ["a list"]\n\n',
        b'data: {"choices": "nope"}\n\n',
        b"data: [DONE]\n\ndata: {}\n\n",
    ],
)
def test_openai_stream_protocol_errors(stream: bytes) -> None:
    """Malformed JSON, error events and data after [DONE] are protocol errors."""
    with pytest.raises(ProtocolError):
        _StreamDecoder().feed(stream)


def test_openai_stream_without_done_is_an_error() -> None:
    """A stream that ends before [DONE] was cut short."""
    decoder = _StreamDecoder()
    decoder.feed(b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n')
    with pytest.raises(ProtocolError, match="DONE"):
        decoder.finish()
