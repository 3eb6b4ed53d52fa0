"""HTTP/1.1's chunked transfer coding undone incrementally (RFC 9112 §7.1), as strictly as h11
undoes it: the probe reads streamed bodies itself (``streamed.py``). Pure: bytes in, body
bytes out, in any chunking."""

from __future__ import annotations

import re

import h11

from llmmon.providers.base import ProtocolError

# h11's chunk header: 1 to 20 hex digits, extensions after ";" (ignored), trailing blanks.
_HEADER = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;[^\r\n]*)?[ \t]*")
MAX_LINE_BYTES = 16 << 10  # h11's bound on an incomplete event: a chunk header or trailer
_SIZE, _DATA, _CRLF, _TRAILER, _DONE = range(5)
_FOLD = re.compile(rb"[ \t]+")


def check_trailer(lines: list[bytes]) -> None:
    """Refuse a trailer block h11 refuses: lines folded (obs-fold) as h11 folds them, then each
    split at its first ":" and validated by h11's own header rules. Runs only on a trailer,
    which SSE servers never send, so it stays off the hot path."""
    fields: list[bytes] = []
    for line in lines:
        fold = _FOLD.match(line)
        if fold is None:
            fields.append(line)
        elif not fields:
            raise ProtocolError("continuation line at start of trailer")
        else:
            fields[-1] += b" " + line[fold.end():]
    pairs = []
    for field in fields:
        name, colon, value = field.partition(b":")
        if not colon:
            raise ProtocolError("illegal trailer line")
        pairs.append((name, value.strip(b" \t")))
    try:
        h11.EndOfMessage(headers=pairs)
    except h11.ProtocolError as exc:
        raise ProtocolError("illegal trailer line") from exc


class Dechunker:
    def __init__(self) -> None:
        self._buf = b""
        self._state = _SIZE
        self._left = 0  # bytes of the current chunk's data still to come
        self.rest = b""  # bytes after the end of the message: none on a sound connection
        self._trailer: list[bytes] = []  # checked whole at its end, as h11 checks it
        self._trailer_bytes = 0

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
                    check_trailer(self._trailer)
                    self._state = _DONE
                else:
                    self._trail(line[:-1] if line.endswith(b"\r") else line)
            else:
                self.rest += buf[pos:]
                return end
        return pos

    def _trail(self, line: bytes) -> None:
        # A trailer block is kept until its end: bounded like a chunk header (h11 bounds it
        # while incomplete; a whole one past 16 KiB, which it would take, is refused here)
        self._trailer_bytes += len(line) + 2
        if self._trailer_bytes > MAX_LINE_BYTES:
            raise ProtocolError("chunk header or trailer too long")
        self._trailer.append(line)
