"""An incremental Server-Sent Events parser (WHATWG HTML, "event stream interpretation").

Pure: bytes in, events out, in any chunking. The probe stamps each network chunk before
handing it here, so parsing never delays a timestamp.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EOL = re.compile(rb"\r\n|\r|\n")
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
        self._buf = bytearray()
        self._data: list[str] = []
        self._event = ""
        self._first_line = True

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Events completed by ``chunk``."""
        self._buf += chunk
        events: list[SSEEvent] = []
        pos = 0
        while match := _EOL.search(self._buf, pos):
            if match.group() == b"\r" and match.end() == len(self._buf):
                break  # the \n of a \r\n may be in the next chunk
            event = self._line(bytes(self._buf[pos : match.start()]))
            if event is not None:
                events.append(event)
            pos = match.end()
        del self._buf[:pos]
        if len(self._buf) > MAX_LINE_BYTES:
            raise SSEError("line too long")
        return events

    def _line(self, raw: bytes) -> SSEEvent | None:
        if self._first_line:
            self._first_line = False
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        line = raw.decode("utf-8", errors="replace")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment, often a keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None  # id and retry do not matter to a probe

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = SSEEvent(self._event or "message", "\n".join(self._data))
        self._data, self._event = [], ""
        return event
