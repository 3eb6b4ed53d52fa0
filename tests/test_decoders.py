"""Every provider's stream decoder on arbitrary bytes: ProtocolError or events, nothing else,
and the same result however the bytes are split."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmmon.providers.anthropic import _StreamDecoder as AnthropicDecoder
from llmmon.providers.base import ProtocolError
from llmmon.providers.ndjson import NDJSONError, NDJSONSplitter
from llmmon.providers.ollama import _StreamDecoder as OllamaDecoder
from llmmon.providers.openai import _StreamDecoder as OpenAIDecoder
from llmmon.providers.tgi import _StreamDecoder as TGIDecoder

DECODERS = [OpenAIDecoder, AnthropicDecoder, OllamaDecoder, TGIDecoder]

# Plausible pieces, so that generated streams get past the framing into the JSON handling.
PIECES = st.sampled_from([
    b"data: ", b"event: message_delta\n", b"\n\n", b"\n", b"\r\n", b"{", b"}", b"[", b"]",
    b'"choices":', b'"delta":', b'"content":"x"', b'"usage":', b'"type":"content_block_delta"',
    b'"type":"message_stop"', b'"message":', b'"done":true', b'"token":', b'"text":"y"',
    b'"generated_text":null', b'"details":', b"null", b"1", b",", b"[DONE]", b"\xff", b":",
    # server timing: llama-server's timings, Ollama's durations, odd numbers
    b'"timings":', b'"prompt_ms":', b'"cache_n":', b'"total_duration":', b"-1", b"1e999",
])


def run(decoder_cls: Any, chunks: list[bytes]) -> Any:
    decoder = decoder_cls()
    events: list[Any] = []
    try:
        for chunk in chunks:
            events += decoder.feed(chunk)
        decoder.finish()
    except ProtocolError:
        return ("error", events)
    return ("ok", events)


@pytest.mark.parametrize("decoder_cls", DECODERS)
@settings(max_examples=300, deadline=None)
@given(data=st.lists(PIECES, max_size=40), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_decoders_only_raise_protocol_errors(decoder_cls: Any, data: list[bytes],
                                            cuts: list[int]) -> None:
    """Whatever arrives, a decoder yields events or a ProtocolError, split-independently."""
    stream = b"".join(data)
    bounds = sorted({c for c in cuts if c <= len(stream)} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    whole = run(decoder_cls, [stream])
    split = run(decoder_cls, chunks)
    assert whole[0] == split[0]
    if whole[0] == "ok":
        assert whole[1] == split[1]


@given(st.binary(max_size=500), st.lists(st.integers(0, 500), max_size=6))
def test_ndjson_lines_do_not_depend_on_chunking(data: bytes, cuts: list[int]) -> None:
    """The NDJSON splitter gives the same lines however the bytes are split."""
    bounds = sorted({c for c in cuts if c <= len(data)} | {0, len(data)})
    splitter = NDJSONSplitter()
    lines = [line for a, b in itertools.pairwise(bounds)
             for line in splitter.feed(data[a:b])]
    assert lines == NDJSONSplitter().feed(data)


def test_ndjson_crlf_blank_lines_and_overlong() -> None:
    """CRLF endings are trimmed, blank lines skipped, and an endless line is refused."""
    assert NDJSONSplitter().feed(b'{"a":1}\r\n\r\n{"b":2}\n{"c"') == [b'{"a":1}', b'{"b":2}']
    splitter = NDJSONSplitter()
    for _ in range(10):
        splitter.feed(b"x" * 100_000)
    with pytest.raises(NDJSONError):
        splitter.feed(b"x" * 100_000)
