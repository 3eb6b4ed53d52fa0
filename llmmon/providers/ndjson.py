"""An incremental newline-delimited JSON splitter (Ollama's native stream). Pure."""

from __future__ import annotations

MAX_LINE_BYTES = 1 << 20


class NDJSONError(ValueError):
    """The bytes are not a usable NDJSON stream."""


class NDJSONSplitter:
    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        """Complete, non-blank lines ended by this chunk, without their line endings."""
        self._buf += chunk
        *lines, rest = self._buf.split(b"\n")
        self._buf = bytearray(rest)
        if len(self._buf) > MAX_LINE_BYTES:
            raise NDJSONError("line too long")
        return [bytes(line.rstrip(b"\r")) for line in lines if line.strip()]

    @property
    def pending(self) -> bool:
        return bool(self._buf.strip())
