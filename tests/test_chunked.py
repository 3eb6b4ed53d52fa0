"""The probe's own chunked-body decoder, checked against h11 (what reads every other body) on
well-formed and broken codings split every way; and the stream's reads cut at head ends."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmmon.probe.chunked import MAX_LINE_BYTES, Dechunker
from llmmon.probe.heads import HeadAligned
from llmmon.providers.base import ProtocolError

HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def h11_reads(body: bytes) -> tuple[bytes, bool] | None:
    """What h11 makes of a chunked body: (data, finished), or None where it refuses it."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(HEAD + body)
    out = b""
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return out, False
            if isinstance(event, h11.Data):
                out += event.data
            elif isinstance(event, h11.EndOfMessage):
                return out, True
    except h11.RemoteProtocolError:
        return None


def ours(body: bytes, cuts: list[int]) -> tuple[bytes, bool] | None:
    dechunk, out, last = Dechunker(), b"", 0
    try:
        for cut in [*sorted({c for c in cuts if c <= len(body)}), len(body)]:
            out += dechunk.feed(body[last:cut])
            last = cut
    except ProtocolError:
        return None
    return out, dechunk.done


def encode(parts: list[bytes], ext: bool = False, trailer: bool = False) -> bytes:
    coded = b"".join(b"%x%s\r\n%s\r\n" % (len(p), b";a=b" if ext else b"", p) for p in parts
                     if p)
    return coded + b"0\r\n" + (b"X-Check: 1\r\n" if trailer else b"") + b"\r\n"


parts = st.lists(st.binary(min_size=1, max_size=300), max_size=8)
cuts = st.lists(st.integers(min_value=0, max_value=3000), max_size=10)


@given(parts, st.booleans(), st.booleans(), cuts)
def test_well_formed_bodies_decode_as_h11_does(chunks: list[bytes], ext: bool, trailer: bool,
                                               cut_at: list[int]) -> None:
    body = encode(chunks, ext, trailer)
    assert ours(body, cut_at) == h11_reads(body) == (b"".join(chunks), True)


@given(parts, st.integers(min_value=0, max_value=3000), st.integers(0, 255), cuts)
def test_a_broken_coding_is_refused_where_h11_refuses_it(chunks: list[bytes], at: int,
                                                          byte: int, cut_at: list[int]) -> None:
    """One byte changed anywhere before the last chunk: h11 and the probe agree on the data
    and on whether it ended, or both refuse it."""
    body = encode(chunks)
    end = len(body) - 5  # the last chunk and the empty trailer line
    if end <= 0:
        return
    at %= end
    broken = body[:at] + bytes([byte]) + body[at + 1:]
    expected = h11_reads(broken)
    got = ours(broken, cut_at)
    if expected is None:
        assert got is None or not got[1]  # refused, or never ends (h11 refused a trailer)
    else:
        assert got == expected


trailer_lines = st.lists(st.binary(max_size=12).filter(lambda b: b"\n" not in b), max_size=4)


@given(trailer_lines, st.booleans(), cuts)
def test_any_trailer_reads_as_h11_reads_it(lines: list[bytes], ended: bool,
                                           cut_at: list[int]) -> None:
    """Trailer lines of any bytes, some of them header lines: refused, or not, as h11 does."""
    body = b"5\r\nhello\r\n0\r\n" + b"".join(line + b"\r\n" for line in lines)
    body += b"\r\n" if ended else b""
    assert ours(body, cut_at) == h11_reads(body)


@pytest.mark.parametrize("body", [
    b"5 \t\r\nhello\r\n0\r\n\r\n",  # blanks after the size (some servers send them)
    b"A\r\n0123456789\r\n0\r\n\r\n",  # upper-case hex
    b"5;name=\"v\"\r\nhello\r\n0\r\n\r\n",  # an extension
    b"000000000000000000005\r\nhello\r\n0\r\n\r\n",  # 21 digits: refused
    b"5\nhello\r\n0\r\n\r\n",  # a bare LF after the size: refused
    b"g\r\n",  # not hex
    b"5\r\nhelloXX0\r\n\r\n",  # no CRLF after the data
    b"5\r\nhello\r\n0\r\nA: b\n\n",  # trailer lines may end in a bare LF
    b"0\r\n\x00\r\n0\r\n\r\n",  # a trailer line that is no header: refused
    b"0\r\nA: b\r\n c\r\n\r\n",  # a folded trailer line
    b"0\r\n A: b\r\n\r\n",  # a continuation line first: refused
    b"0\r\nA : b\r\n\r\n",  # a blank before the colon: refused
    b"0\r\nA: b\x00c\r\n\r\n",  # NUL in a value: refused
    b"0\r\nContent-Length: x\r\n\r\n",  # h11's own rules on known fields: refused
    b"0\r\nA: b\r\n",  # a trailer not ended yet
])
def test_literal_codings_read_as_h11_reads_them(body: bytes) -> None:
    assert ours(body, []) == h11_reads(body)


def test_bytes_after_the_end_are_kept_apart() -> None:
    dechunk = Dechunker()
    assert dechunk.feed(b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1") == b"abc"
    assert dechunk.done
    assert dechunk.rest == b"HTTP/1.1"
    assert dechunk.feed(b" 200") == b""
    assert dechunk.rest == b"HTTP/1.1 200"


def test_an_endless_chunk_header_is_refused() -> None:
    dechunk = Dechunker()
    for _ in range(MAX_LINE_BYTES // 1000):
        dechunk.feed(b"0" * 1000)
    with pytest.raises(ProtocolError, match="too long"):
        dechunk.feed(b"0" * 2000)


class Reads(HeadAligned):
    """The cutting alone, over scripted reads."""

    def __init__(self, reads: list[bytes]) -> None:
        self.reads = reads

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        data = self._take_pending() if self.has_pending else self.reads.pop(0)
        return self._give(data, max_bytes)


async def test_reads_stop_at_the_end_of_a_head_and_keep_the_rest() -> None:
    stream = Reads([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nA: b\r",
                    b"\n\r\n5\r\nhello\r\n"])
    stream._expect_head(0)
    assert await stream.read(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert await stream.read(65536) == b"HTTP/1.1 200 OK\r\nA: b\r"
    assert not stream._at_head_end
    # the blank line straddles two reads
    assert await stream.read(65536) == b"\n\r\n"
    assert stream.take_body()
    assert await stream.read(3) == b"5\r\n"  # no longer cut, but never past max_bytes
    assert await stream.read(65536) == b"hello\r\n"


async def test_a_bare_lf_head_ends_where_h11_ends_it() -> None:
    stream = Reads([b"HTTP/1.1 200 OK\nA: b\n\n5\r\nhello\r\n"])
    stream._expect_head(0)
    assert await stream.read(65536) == b"HTTP/1.1 200 OK\nA: b\n\n"
    assert stream.take_body()


async def test_no_body_to_take_once_h11_was_given_part_of_it() -> None:
    """A read that did not end at a head's end (the head already parsed earlier): h11 may
    hold body bytes, so the probe must not read the body itself."""
    stream = Reads([b"HTTP/1.1 200 OK\r\n\r\n", b"5\r\nhel"])
    stream._expect_head(0)
    await stream.read(65536)
    await stream.read(65536)
    assert not stream.take_body()
    stream.give_back(b"0\r\n\r\n")
    assert await stream.read(65536) == b"0\r\n\r\n"
