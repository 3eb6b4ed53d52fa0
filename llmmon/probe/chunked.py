"""HTTP/1.1's chunked transfer coding undone incrementally (RFC 9112 §7.1), as strictly as h11
undoes it: the probe reads streamed bodies itself (``streamed.py``). Pure: bytes in, body
bytes out, in any chunking."""

from __future__ import annotations

import re

from llmmon.providers.base import ProtocolError

# h11's chunk header: 1 to 20 hex digits, extensions after ";" (ignored), trailing blanks.
_HEADER = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;[^\r\n]*)?[ \t]*")
MAX_LINE_BYTES = 16 << 10  # h11's bound on an incomplete event: a chunk header or trailer
_SIZE, _DATA, _CRLF, _TRAILER, _DONE = range(5)


class Dechunker:
    def __init__(self) -> None:
        self._buf = b""
        self._state = _SIZE
        self._left = 0  # bytes of the current chunk's data still to come
        self.rest = b""  # bytes after the end of the message: none on a sound connection

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> bytes:
        """The body bytes ``data`` completes. Raises ProtocolError on a malformed coding."""
        if self._state == _DONE:
            self.rest += data
            return b""
        buf = self._buf + data if self._buf else data
        if self._state == _DATA and len(buf) < self._left:  # the common case: inside a chunk
            self._left -= len(buf)
            self._buf = b""
            return buf
        out: list[bytes] = []
        pos = self._step(buf, 0, out)
        self._buf = buf[pos:]
        if len(self._buf) > MAX_LINE_BYTES:
            raise ProtocolError("chunk header or trailer too long")
        return b"".join(out)

    def _step(self, buf: bytes, pos: int, out: list[bytes]) -> int:
        """Consume what ``buf`` holds from ``pos``; return where an incomplete part starts."""
        end = len(buf)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._left, end - pos)
                out.append(buf[pos:pos + take])
                pos += take
                self._left -= take
                if self._left:
                    return pos
                self._state = _CRLF
            elif state == _CRLF:
                if end - pos < 2:
                    return pos
                if buf[pos:pos + 2] != b"\r\n":
                    raise ProtocolError("malformed chunk footer")
                pos += 2
                self._state = _SIZE
            elif state == _SIZE:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return pos
                header = _HEADER.fullmatch(buf, pos, eol)
                if header is None:
                    raise ProtocolError("illegal chunk header")
                self._left = int(header.group(1), 16)
                self._state = _DATA if self._left else _TRAILER
                pos = eol + 2
            elif state == _TRAILER:
                eol = buf.find(b"\n", pos)  # h11 reads trailer lines as header lines: \n ends one
                if eol < 0:
                    return pos
                line, pos = buf[pos:eol], eol + 1
                if line in (b"", b"\r"):
                    self._state = _DONE
            else:
                self.rest += buf[pos:]
                return end
        return pos
