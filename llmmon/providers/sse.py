"""An incremental Server-Sent Events parser (WHATWG HTML, "event stream interpretation").

Pure: bytes in, events out, in any chunking. The probe stamps each network chunk before
handing it here, so parsing never delays a timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass

# A line longer than this is not an event stream we understand (and would grow unbounded).
MAX_LINE_BYTES = 1 << 20


class SSEError(ValueError):
    """The bytes are not a usable event stream."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str
    data: str


class SSEParser:
    def __init__(self) -> None:
        self._parts: list[bytes] = []  # an unfinished line, as it came
        self._size = 0
        self._data: list[bytes] = []
        self._event = ""
        self._first_line = True

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Events completed by ``chunk``. Bytes-level, one split per chunk: most of a
        streamed event's parsing cost was a regex search and a decode per line."""
        if b"\n" not in chunk and b"\r" not in chunk and not self._held_cr():
            # Still inside a line: kept aside, not scanned again (a long line sent a byte at
            # a time stays linear).
            self._keep(chunk)
            return []
        buf = b"".join([*self._parts, chunk]) if self._parts else chunk
        held = b""
        if b"\r" in buf:  # \r\n and lone \r end lines too; a final \r may be half a \r\n
            if buf.endswith(b"\r"):
                buf, held = buf[:-1], b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._parts, self._size = [], 0
        self._keep(lines.pop() + held)
        if lines and self._first_line:
            self._first_line = False
            lines[0] = lines[0].removeprefix(b"\xef\xbb\xbf")
        events: list[SSEEvent] = []
        for line in lines:
            if line.startswith(b"data:"):  # nearly every line
                self._data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif not line:
                if self._data:
                    data = b"\n".join(self._data).decode("utf-8", errors="replace")
                    events.append(SSEEvent(self._event or "message", data))
                    self._data = []
                self._event = ""
            elif not line.startswith(b":"):  # a comment (often a keep-alive) is skipped
                self._field(line)
        return events

    def _held_cr(self) -> bool:
        return bool(self._parts) and self._parts[-1].endswith(b"\r")

    def _keep(self, part: bytes) -> None:
        if part:
            self._parts.append(part)
            self._size += len(part)
            if self._size > MAX_LINE_BYTES:
                raise SSEError("line too long")

    def _field(self, line: bytes) -> None:
        name, _, value = line.partition(b":")
        value = value.removeprefix(b" ")
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", errors="replace")
        # id and retry do not matter to a probe
