"""Reads cut at the end of a response head, so that the probe can read a streamed body itself.

httpx, httpcore and h11 cost more per streamed event than everything else a probe does with
it (parsing included; ``benchmarks/cpu_per_event.py``). They still send the request and read
the response head, which they do well; then, for a chunked body, the probe reads straight from
the stamped stream (``probe/streamed.py``). That is only sound if h11 holds no byte of the
body, so from a request's send until the probe takes the body, a read never returns bytes past
the end of a head: where one read brings the head and the first events together, the events
wait here, with the stamp of the read they came in.
"""

from __future__ import annotations

import re

from llmmon.probe.trace import Stamped

# Where h11 ends a head (its ReceiveBuffer's blank line): the split must be exactly there.
_BLANK_LINE = re.compile(b"\n\r?\n")
# The bytes h11 reads as an empty last chunk: given back to it once the probe has read the
# body, it sees a finished response and returns the connection to the pool.
LAST_CHUNK = b"0\r\n\r\n"


class HeadAligned(Stamped):
    """A stream's side of the hand-over; plain TCP (``backend.py``) and TLS (``tls.py``)."""

    _pending = b""  # read but not yet given: the next read gives it first
    _heads = False  # cutting at head ends (from a request's send until the body is taken)
    _tail = b""  # the last bytes given while cutting: a blank line may straddle two reads
    _at_head_end = False  # the last read ended exactly where a head ends
    _writing = False  # writes since the last read: one request's

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        raise NotImplementedError

    def _expect_head(self, now_ns: int) -> None:
        """A request is going out (``now_ns``, before its write): cut reads until its
        response's body is taken."""
        if not self._writing:  # its first write (httpcore writes head and body apart)
            self.first_tx_ns = now_ns
            self._writing = True
        self._heads, self._tail, self._at_head_end = True, b"", False

    def _give(self, data: bytes, max_bytes: int) -> bytes:
        """What a read returns of ``data`` (fresh bytes, or what was pending); the rest waits."""
        data, rest = data[:max_bytes], data[max_bytes:]
        self._writing = False  # reading the response: a write from now on is a new request
        if self._heads:
            seen = self._tail + data
            match = _BLANK_LINE.search(seen)
            if match is not None:
                end = match.end() - len(self._tail)
                data, rest = data[:end], data[end:] + rest
            self._at_head_end = match is not None
            self._tail = b"" if match is not None else seen[-2:]
        self._pending = rest
        return data

    def _take_pending(self) -> bytes:
        data, self._pending = self._pending, b""
        return data

    def take_body(self) -> bool:
        """Called once the head is parsed: whether h11 was given nothing past it, so that the
        probe may read the body from here. Either way reads are no longer cut."""
        ok = self._heads and self._at_head_end
        self._heads = self._at_head_end = False
        self._tail = b""
        return ok

    def give_back(self, data: bytes) -> None:
        """``data`` is what the next read returns, before anything pending or new."""
        self._pending = data + self._pending

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)
