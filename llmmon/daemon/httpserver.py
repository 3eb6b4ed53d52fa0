"""A small HTTP/1.1 server on asyncio, shared by the exporter and the simulator.

Why not a framework: llmmon serves five fixed routes, must bound everything a client can
make it hold (connections, header bytes, body bytes, time), and must not add a second event
loop or thread pool beside the one its probes are timed on. The wire format is h11's (see
``http11.py``); this module owns the listening sockets and the table of connections.

What a crowd of slow or silent clients cannot do:

- hold every slot: at ``max_connections`` a new connection takes the place of the one that
  has waited longest for a request (idle keep-alive, silent, a head dripping in, a TLS
  handshake that never starts), as those are the connections that cost the server nothing to
  drop; only when every connection is busy inside a request is a new one refused;
- hold more than ``max_per_peer`` connections from one address (half the cap by default, at
  least 8): that address's longest-waiting connection makes room, or the new one is refused;
- escape the count: TLS handshakes run inside the connection's own task, after it was
  admitted, under the same request deadline (``asyncio.start_server(ssl=...)`` would
  handshake before the server sees the connection);
- run the process out of file descriptors unnoticed: an accept that fails for want of them
  drops the longest-waiting connection and keeps accepting; warnings are at most one a minute
  whatever a client does.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import resource
import socket
import ssl

from llmmon.daemon import http11
from llmmon.daemon.http11 import (
    MAX_BODY_BYTES,
    MAX_HEAD_BYTES,
    WRITE_TIMEOUT,
    Connection,
    Handler,
    Request,
    Response,
    text,
    warn,
)

__all__ = ["MAX_BODY_BYTES", "MAX_HEAD_BYTES", "WRITE_TIMEOUT", "HTTPServer", "Handler",
           "Request", "Response", "text"]


_ACCEPT_BATCH = 8  # accepts between two turns of the loop: a flood cannot starve the rest
_OUT_OF_FDS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
         b"Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n")


class _Conn:
    """One admitted connection: its place in the table."""

    __slots__ = ("peer", "sock", "started", "task")

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock, self.peer, self.started = sock, peer, False
        self.task: asyncio.Task[None] | None = None


class HTTPServer:
    def __init__(self, handler: Handler, *, max_connections: int = 64,
                 max_per_peer: int | None = None, max_body: int = MAX_BODY_BYTES) -> None:
        self._handler = handler
        self._max_body = max_body
        # Half the descriptors the process may open at most, so that the rest of it (probes,
        # samplers, logs) keeps some: Go raises the soft limit at start; Python does not.
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        self._max_connections = max_connections if soft == resource.RLIM_INFINITY \
            else max(1, min(max_connections, soft // 2))
        self._max_per_peer = max_per_peer or max(8, self._max_connections // 2)
        self._conns: dict[_Conn, None] = {}
        self._waiting: dict[_Conn, None] = {}  # waiting for a request, longest-waiting first
        self._peers: dict[str, int] = {}
        self._listeners: list[socket.socket] = []
        self._acceptors: list[asyncio.Task[None]] = []
        self._ssl: ssl.SSLContext | None = None

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None
                    ) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        self._ssl = ssl_context
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        try:
            for family, kind, proto, _, address in dict.fromkeys(infos):
                sock = socket.socket(family, kind, proto)
                self._listeners.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                try:
                    sock.bind(address)
                except OSError as exc:  # worded as asyncio.start_server words it
                    raise OSError(exc.errno, f"error while attempting to bind on address "
                                  f"{address!r}: {(exc.strerror or '').lower()}") from None
                sock.listen(socket.SOMAXCONN)
                sock.setblocking(False)
        except OSError:
            await self.close()
            raise
        self._acceptors = [asyncio.create_task(self._accept(s)) for s in self._listeners]
        return int(self._listeners[0].getsockname()[1])

    async def close(self) -> None:
        for task in self._acceptors:
            task.cancel()
        await asyncio.gather(*self._acceptors, return_exceptions=True)
        for sock in self._listeners:
            sock.close()
        tasks = [c.task for c in self._conns if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            for i in range(_ACCEPT_BATCH):
                try:  # the first waits for a connection; the rest take what is already there
                    sock, address = await loop.sock_accept(listener) if i == 0 \
                        else listener.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    break
                except OSError as exc:
                    if exc.errno not in _OUT_OF_FDS:
                        warn("accept", "accept failed: %s", exc)
                        await asyncio.sleep(0.1)  # and keep listening
                    else:
                        warn("fds", "cannot accept a connection (%s); closing the "
                                   "longest-waiting ones to make room", exc.strerror)
                        if not self._drop(None):  # its descriptor is free in a turn or two
                            await asyncio.sleep(0.1)  # all busy: try again soon, not spin
                    break
                self._admit(sock, address)
            await asyncio.sleep(0)

    def _admit(self, sock: socket.socket, address: object) -> None:
        peer = str(address[0]) if isinstance(address, tuple) else ""
        if self._peers.get(peer, 0) >= self._max_per_peer and not self._drop(peer):
            self._refuse(sock, f"{peer} holds {self._max_per_peer} busy connections")
            return
        if len(self._conns) >= self._max_connections and not self._drop(None):
            self._refuse(sock, f"all {self._max_connections} connections are busy")
            return
        conn = _Conn(sock, peer)
        self._conns[conn] = None
        self._waiting[conn] = None
        self._peers[peer] = self._peers.get(peer, 0) + 1
        conn.task = asyncio.create_task(self._serve(conn))
        conn.task.add_done_callback(lambda _: None if conn.started else sock.close())

    def _drop(self, peer: str | None) -> bool:
        """Close the connection (of ``peer``, or any) that has waited longest for a request."""
        for conn in self._waiting:
            if peer is None or conn.peer == peer:
                self._forget(conn)
                if conn.task is not None:
                    conn.task.cancel()
                return True
        return False

    def _forget(self, conn: _Conn) -> None:
        if self._conns.pop(conn, False) is None:
            self._waiting.pop(conn, None)
            if (left := self._peers[conn.peer] - 1) > 0:
                self._peers[conn.peer] = left
            else:
                del self._peers[conn.peer]

    def _refuse(self, sock: socket.socket, why: str) -> None:
        warn("full", "refusing connections: %s", why)
        if self._ssl is None:
            with contextlib.suppress(OSError):
                sock.setblocking(False)
                sock.send(_BUSY)
        sock.close()

    def _set_waiting(self, conn: _Conn, waiting: bool) -> None:
        if conn in self._conns:
            self._waiting.pop(conn, None)
            if waiting:
                self._waiting[conn] = None  # now the one that has waited least

    async def _serve(self, conn: _Conn) -> None:
        conn.started = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + http11.HEAD_TIMEOUT
        writer: asyncio.StreamWriter | None = None
        try:
            reader = asyncio.StreamReader(limit=MAX_HEAD_BYTES, loop=loop)
            protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
            async with asyncio.timeout_at(deadline):
                transport, _ = await loop.connect_accepted_socket(
                    lambda: protocol, conn.sock, ssl=self._ssl,
                    ssl_handshake_timeout=http11.HEAD_TIMEOUT if self._ssl else None)
            writer = asyncio.StreamWriter(transport, protocol, reader, loop)
            http = Connection(reader, writer, self._handler,
                              lambda waiting: self._set_waiting(conn, waiting), self._max_body)
            await http.serve(deadline)
        except (OSError, TimeoutError, asyncio.CancelledError):
            pass  # gone, stalled, dropped to make room or the server is closing: nothing to say
        except Exception:
            warn("response", "a response failed midway", exc_info=True)
        finally:
            self._forget(conn)
            if writer is None:
                conn.sock.close()  # no transport took it (one that did has closed it)
            else:
                await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close gracefully when what is left to send goes out within a second, else abort: a
    client that stopped reading must not keep the socket open."""
    writer.close()
    try:
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
    except (OSError, TimeoutError, asyncio.CancelledError):
        writer.transport.abort()
