"""TLS over llmmon's stamped TCP stream (``backend.py``) through ``ssl.SSLObject``, so that
HTTPS keeps the kernel's receive stamps: plaintext carries the stamp of the ciphertext it came
in. Response heads are cut in plaintext (``heads.py``)."""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any, Protocol

import httpcore

from llmmon.probe.heads import HeadAligned


class RawStream(Protocol):
    """The stamped TCP stream under TLS."""

    cut_heads: bool
    dns_seconds: float
    last_rx_ns: int | None
    last_tx_ns: int | None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes: ...

    async def write(self, buffer: bytes, timeout: float | None = None) -> None: ...

    def send_now(self, buffer: bytes) -> bytes: ...

    async def aclose(self) -> None: ...

    def rtt_seconds(self) -> float | None: ...

    def get_extra_info(self, info: str) -> Any: ...


class TLSStream(HeadAligned, httpcore.AsyncNetworkStream):
    def __init__(self, raw: RawStream, context: ssl.SSLContext, hostname: str | None
                 ) -> None:
        self.raw = raw
        raw.cut_heads = False  # ciphertext has no heads to cut
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_hostname=hostname)

    dns_seconds = property(lambda self: self.raw.dns_seconds)
    last_rx_ns = property(lambda self: self.raw.last_rx_ns)
    last_tx_ns = property(lambda self: self.raw.last_tx_ns)

    def rtt_seconds(self) -> float | None:
        return self.raw.rtt_seconds()

    async def _flush(self) -> None:
        if pending := self._out.read():
            await self.raw.write(pending)

    async def _fill(self, timeout: float | None = None) -> None:
        await self._flush()
        data = await self.raw.read(65536, timeout)
        if data:
            self._in.write(data)
        else:
            self._in.write_eof()

    async def handshake(self) -> None:
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._fill()
        await self._flush()

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._pending:
            return self._give(self._take_pending(), max_bytes)
        try:
            data = await self._plain(max_bytes, timeout)
        except ssl.SSLError as exc:
            raise httpcore.ReadError(str(exc)) from exc
        return self._give(data, max_bytes) if self._heads else data

    async def _plain(self, max_bytes: int, timeout: float | None) -> bytes:
        # The raw stream's reads time themselves out: no asyncio.timeout() per read here.
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while True:
            try:
                return self._tls.read(max_bytes)
            except ssl.SSLWantReadError:
                left = None if deadline is None else \
                    max(0.0, deadline - asyncio.get_running_loop().time())
                await self._fill(left)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            self._tls.write(buffer)
        except ssl.SSLError as exc:
            raise httpcore.WriteError(str(exc)) from exc
        self._expect_head(time.monotonic_ns())
        await self.raw.write(self._out.read(), timeout)

    def send_now(self, buffer: bytes) -> bytes:
        """As the plain stream's (``backend.py``): encrypted, then handed over without waiting;
        what is left is ciphertext, for ``finish_send``."""
        try:
            self._tls.write(buffer)
        except ssl.SSLError as exc:
            raise httpcore.WriteError(str(exc)) from exc
        self._expect_head(time.monotonic_ns())
        return self.raw.send_now(self._out.read())

    async def finish_send(self, rest: bytes) -> None:
        await self.raw.write(rest)

    async def aclose(self) -> None:
        await self.raw.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("TLS inside TLS is not supported")

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._tls
        if info == "is_readable" and self.has_pending:
            return True
        return self.raw.get_extra_info(info)
