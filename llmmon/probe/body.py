"""Reading a response body under a byte cap: decompressed if the server compressed it despite
being asked for identity, and never more than the cap of decoded bytes."""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import AsyncIterator, Callable

import httpx

from llmmon.providers.base import ProtocolError


class TooLarge(Exception):
    """The body passed its cap."""


# A socket that always has data never makes a read wait, so the loop would never get a turn:
# no scrape answered, no timeout fired. Whoever reads or parses gives it one this often.
TURN_EVERY = 0.002  # seconds


class Pacer:
    """Gives the event loop a turn once ``TURN_EVERY`` has passed since the last one."""

    def __init__(self) -> None:
        self._last = time.monotonic()

    def due(self) -> bool:
        """Whether a turn is due; if so, the caller gives it now (``asyncio.sleep(0)``)."""
        now = time.monotonic()
        if now - self._last >= TURN_EVERY:
            self._last = now
            return True
        return False

    async def turn(self) -> None:
        if self.due():
            await asyncio.sleep(0)


async def chunks(response: httpx.Response, max_bytes: int, pacer: Pacer | None = None
                 ) -> AsyncIterator[bytes]:
    """The body as it arrives, decompressed if the server compressed it despite our asking
    for identity, and never more than ``max_bytes`` of decoded bytes: a gzip bomb stops at
    the cap without being inflated."""
    inflate = decompressor(response.headers.get("content-encoding", ""))
    total, pacer = 0, pacer or Pacer()  # one pacer with a caller that parses as it reads
    async for raw in response.aiter_raw():
        data = inflate(raw, max_bytes - total + 1) if inflate else raw
        total += len(data)
        if total > max_bytes:
            raise TooLarge
        yield data
        await pacer.turn()


def decompressor(encoding: str) -> Callable[[bytes, int], bytes] | None:
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
            raise TooLarge  # more would come out than the cap allows
        return out

    return inflate


async def read_body(response: httpx.Response, max_bytes: int) -> bytes:
    return b"".join([chunk async for chunk in chunks(response, max_bytes)])


async def read_prefix(response: httpx.Response, limit: int) -> bytes:
    """Up to ``limit`` bytes of a body, for its message; what cannot be read is left."""
    out = bytearray()
    try:
        async for chunk in chunks(response, limit):
            out += chunk
    except (TooLarge, ProtocolError, httpx.HTTPError):
        pass
    return bytes(out)
