"""An httpcore network backend whose streams know when their bytes really moved.

* Reads use ``recvmsg`` with ``SO_TIMESTAMPNS``: the kernel stamps each segment when it
  arrives, so a token's arrival time no longer includes the wait for the event loop, the
  GIL, or Python's HTTP stack. (Linux; elsewhere the stamp is taken right after the read.)
* Writes stamp the moment before ``send``: the request's last byte handed to the socket is
  where TTFT starts.
* Name resolution is timed apart from the TCP connect (the ``dns`` phase).
* TLS runs over the same raw socket through ``ssl.SSLObject`` (``tls.py``), so HTTPS keeps
  kernel stamps.
* After a request is sent, reads stop at the end of the response head (``heads.py``), so the
  probe can read a streamed body straight from the stream (``streamed.py``).
* The connection's round-trip time is the kernel's own estimate (``TCP_INFO``), read from
  the socket: no extra traffic.

The probe finds the stream in ``response.extensions["network_stream"]`` and reads its stamps
through the ``Stamped`` base class (``trace.py``): ``last_rx_ns`` / ``last_tx_ns`` in
CLOCK_MONOTONIC nanoseconds, ``dns_seconds``, and ``rtt_seconds()``. ``transport.py`` puts
this backend under the httpx client every probe uses.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import sys
import time
from collections.abc import Iterable
from typing import Any

import httpcore

from llmmon.probe.heads import HeadAligned
from llmmon.probe.tls import TLSStream

# Python's socket module does not export SO_TIMESTAMPNS; Linux's value is 35 on x86_64 and
# arm64 (asm-generic), and SCM_TIMESTAMPNS equals it.
_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform == "linux" else None)
_SCM_TIMESTAMPNS = _TIMESTAMPNS
_ANCILLARY = socket.CMSG_SPACE(16) if _TIMESTAMPNS else 0
_TIMESPEC = struct.Struct("@qq")
# struct tcp_info (linux/tcp.h): 8 bytes of u8 fields, then u32s; tcpi_rtt, the smoothed RTT
# in microseconds, is the 16th of them. Its layout only ever grows at the end.
_TCP_INFO = getattr(socket, "TCP_INFO", None) if sys.platform == "linux" else None
_TCPI_RTT = 68
_U32 = struct.Struct("@I")


class StampedStream(HeadAligned, httpcore.AsyncNetworkStream):
    cut_heads = True  # False under TLS: heads are cut in plaintext there (tls.py)

    def __init__(self, sock: socket.socket, dns_seconds: float) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        self._loop = asyncio.get_running_loop()
        self._waiter: asyncio.Future[None] | None = None
        self._watching = False
        self._idle_fires = 0  # times readable with nobody waiting since the last wait
        self._drained = False
        self.dns_seconds = dns_seconds
        self.last_rx_ns: int | None = None
        self.last_tx_ns: int | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._pending:  # no read from the socket: the stamp is still these bytes'
            return self._give(self._take_pending(), max_bytes)
        # No asyncio.timeout() per read: on a streamed answer a read per event, and the
        # context manager cost more than the read (benchmarks/cpu_per_event.py). A waiting
        # read puts a timer on its own waiter instead.
        deadline = None if timeout is None else self._loop.time() + timeout
        if self._drained:  # the last read took all there was: wait before asking again
            await self._readable(deadline)
        while True:
            try:
                data, ancdata, _, _ = self._sock.recvmsg(max_bytes, _ANCILLARY)
            except BlockingIOError:
                await self._readable(deadline)
                continue
            except OSError as exc:
                raise httpcore.ReadError(str(exc)) from exc
            self.last_rx_ns = _kernel_stamp(ancdata) or time.monotonic_ns()
            # Fewer bytes than asked: the socket is empty now. Asking it again at once would
            # cost a failed call and an exception per streamed event.
            self._drained = 0 < len(data) < max_bytes
            return self._give(data, max_bytes) if self._heads else data

    async def _readable(self, deadline: float | None = None) -> None:
        # The socket stays watched between reads: adding and removing it per wait cost two
        # epoll_ctl calls per streamed event. It is dropped when it becomes readable with
        # nobody waiting (_on_readable), and on close.
        waiter = self._waiter = self._loop.create_future()
        self._idle_fires = 0
        if not self._watching:
            self._loop.add_reader(self._fd, self._on_readable)
            self._watching = True
        timer = None if deadline is None else self._loop.call_at(deadline, _expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _on_readable(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(None)
            return
        # Nobody waits. Once is normal: the select that saw the data ran before the woken read
        # took it. Twice in a row, the data really waits for nobody, and level-triggered the
        # watch would wake the loop on every turn until somebody reads.
        self._idle_fires += 1
        if self._idle_fires > 1:
            self._unwatch()

    def _unwatch(self) -> None:
        if self._watching:
            self._watching = False
            self._loop.remove_reader(self._fd)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        # Stamped before the send: a stamp after it can come late by a whole scheduler
        # time slice if the process is preempted in between (measured here: up to 1 ms).
        self.last_tx_ns = time.monotonic_ns()
        if self.cut_heads:
            self._expect_head(self.last_tx_ns)
        try:
            async with asyncio.timeout(timeout):
                await self._loop.sock_sendall(self._sock, buffer)
        except TimeoutError:
            raise httpcore.WriteTimeout("write timed out") from None
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    def send_now(self, buffer: bytes) -> bytes:
        """Hand ``buffer`` to the socket without waiting (a burst's requests go out in one
        tight loop, ``wire.py``); return what it did not take, for ``finish_send``."""
        self.last_tx_ns = time.monotonic_ns()
        if self.cut_heads:
            self._expect_head(self.last_tx_ns)
        try:
            sent = self._sock.send(buffer)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc
        return buffer[sent:]

    async def finish_send(self, rest: bytes) -> None:
        await self.write(rest)

    async def aclose(self) -> None:
        self._unwatch()
        self._sock.close()

    def rtt_seconds(self) -> float | None:
        """The kernel's smoothed round-trip time of this connection; None off Linux, once
        closed, or before the kernel has measured one."""
        if _TCP_INFO is None:
            return None
        try:
            info = self._sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 104)
        except OSError:  # closed (EBADF), or no TCP socket
            return None
        if len(info) < _TCPI_RTT + _U32.size:
            return None
        micros: int = _U32.unpack_from(info, _TCPI_RTT)[0]
        return micros / 1e6 if micros else None  # 0: no sample yet

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        tls = TLSStream(self, ssl_context, server_hostname)
        try:
            async with asyncio.timeout(timeout):
                await tls.handshake()
        except TimeoutError:
            raise httpcore.ConnectTimeout("TLS handshake timed out") from None
        except (ssl.SSLError, OSError) as exc:
            raise httpcore.ConnectError(f"TLS handshake failed: {exc}") from exc
        return tls

    def get_extra_info(self, info: str) -> Any:
        if info == "socket":
            return self._sock
        if info == "client_addr":
            return self._sock.getsockname()
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "is_readable":  # bytes left over make a connection unusable too
            return self.has_pending or _readable_now(self._sock)
        return None


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(httpcore.ReadTimeout("read timed out"))


class StampingBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                dns = time.monotonic() - started
                return StampedStream(await _connect(infos, local_address, socket_options), dns)
        except TimeoutError:
            raise httpcore.ConnectTimeout("connect timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not supported")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _connect(infos: list[Any], local_address: str | None,
                   socket_options: Iterable[Any] | None) -> socket.socket:
    """Try each resolved address in turn, as socket.create_connection does."""
    loop = asyncio.get_running_loop()
    error: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            for option in socket_options or ():
                sock.setsockopt(*option)
            if _TIMESTAMPNS is not None:
                sock.setsockopt(socket.SOL_SOCKET, _TIMESTAMPNS, 1)
            if local_address:
                sock.bind((local_address, 0))
            await loop.sock_connect(sock, address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    raise error or OSError("no address to connect to")


def _kernel_stamp(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    """The kernel's receive time as CLOCK_MONOTONIC ns (it gives CLOCK_REALTIME)."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == _SCM_TIMESTAMPNS and len(data) >= 16:
            seconds, nanos = _TIMESPEC.unpack_from(data)
            offset = time.time_ns() - time.monotonic_ns()
            return int(seconds * 1_000_000_000 + nanos - offset)
    return None


def _readable_now(sock: socket.socket) -> bool:
    """httpcore asks this of idle pooled connections: readable means closed by the peer."""
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)  # data or EOF: either way unusable
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True
