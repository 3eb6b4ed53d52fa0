"""Reading a streamed answer: every read stamped before it is parsed, its events folded into
the result.

A chunked HTTP/1.1 body over llmmon's own stream is read straight from that stream
(``heads.py`` says why and how); anything else (a compressed body, a body with a length, a
foreign transport in tests) goes through httpx as before. Both ways feed the same decoder with
the same bytes and stamps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from functools import partial

import httpx

from llmmon.probe.body import Pacer, TooLarge, chunks
from llmmon.probe.chunked import Dechunker
from llmmon.probe.heads import LAST_CHUNK, HeadAligned
from llmmon.probe.result import ProbeResult, StreamTiming, apply_events
from llmmon.probe.trace import Stamped, Trace
from llmmon.probe.transport import httpx_errors
from llmmon.providers.base import StreamDecoder

log = logging.getLogger(__name__)
PARSE_SLICE = 4096  # bytes of a stream parsed between the loop's turns
READ_BYTES = 65536
# h11's words for the same event, so that a probe's detail does not depend on the path.
INCOMPLETE = "peer closed connection without sending complete message body " \
             "(incomplete chunked read)"


async def read_stream(response: httpx.Response, decoder: StreamDecoder, result: ProbeResult,
                      trace: Trace, max_bytes: int) -> None:
    stamped = trace.stamped
    sent = (stamped.last_tx_ns if stamped else None) \
        or trace.at.get("http11.send_request_body.complete")
    timing = StreamTiming(sent)
    result.sent_ns = sent
    pacer = Pacer()
    stream = trace.stream

    def fold(at: int, chunk: bytes) -> None:
        apply_events(result, decoder.feed(chunk), at, timing)

    if isinstance(stream, HeadAligned) and _direct(response) and stream.take_body():
        last = await _read_direct(stream, response, max_bytes, pacer, fold)
    else:
        last = None
        async for at, chunk in _httpx_chunks(response, stamped, max_bytes, pacer):
            last = at
            await _fold(chunk, partial(fold, at), pacer)
    decoder.finish()
    result.ended_ns = last  # the stamp of the read that ended the body
    if not result.tokens_from_usage:
        result.output_tokens = result.content_chunks or None


async def _fold(chunk: bytes, fold: Callable[[bytes], None], pacer: Pacer) -> None:
    """Parsed a slice at a time, the loop getting its turns in between: a read can hold
    64 KiB of one-byte events."""
    for i in range(0, len(chunk), PARSE_SLICE):
        fold(chunk[i : i + PARSE_SLICE])
        await pacer.turn()


def _direct(response: httpx.Response) -> bool:
    """A body this module can read itself: HTTP/1.1, chunked, not compressed."""
    headers = response.headers
    return (response.extensions.get("http_version") == b"HTTP/1.1"
            and headers.get("transfer-encoding", "").strip().lower() == "chunked"
            and headers.get("content-encoding", "identity").strip().lower() == "identity")


async def _httpx_chunks(response: httpx.Response, stamped: Stamped | None, max_bytes: int,
                        pacer: Pacer) -> AsyncIterator[tuple[int, bytes]]:
    async for chunk in chunks(response, max_bytes, pacer):
        # before any parsing: the kernel's receive stamp where there is one, else now
        yield (stamped.last_rx_ns if stamped and stamped.last_rx_ns
               else time.monotonic_ns()), chunk


async def _read_direct(stream: HeadAligned, response: httpx.Response, max_bytes: int,
                       pacer: Pacer, fold: Callable[[int, bytes], None]) -> int | None:
    """Read the body from the stream, folding each read's bytes with its stamp; return the
    stamp of the read that ended it. No timeout per read: the probe's own deadline bounds
    them all. One plain loop, no generator or coroutine per read: this is the path every
    streamed event takes."""
    dechunk, total, at = Dechunker(), 0, None
    with httpx_errors():
        while not dechunk.done:
            data = await stream.read(READ_BYTES)
            if not data:
                raise httpx.RemoteProtocolError(INCOMPLETE)
            at = stream.last_rx_ns or time.monotonic_ns()
            # A read of one-byte chunks is a chunk header every 6 bytes: undone a slice at a
            # time, the loop getting its turns in between (64 KiB of them took 20 to 70 ms).
            for i in range(0, len(data), PARSE_SLICE):
                body = dechunk.feed(data if len(data) <= PARSE_SLICE
                                    else data[i : i + PARSE_SLICE])
                total += len(body)
                if total > max_bytes:
                    raise TooLarge
                fold(at, body)
                if pacer.due():
                    await asyncio.sleep(0)
    if not dechunk.rest:  # a sound end: the connection may serve the next probe
        await _hand_back(stream, response)
    return at


async def _hand_back(stream: HeadAligned, response: httpx.Response) -> None:
    """Let h11 finish the response it started, with an empty last chunk, so that httpcore
    keeps the connection; if it will not, the connection is closed (and nothing is lost)."""
    stream.give_back(LAST_CHUNK)
    try:
        async for _ in response.aiter_raw():
            pass
    except httpx.HTTPError as exc:
        log.debug("connection not kept after a direct read: %s", exc)
