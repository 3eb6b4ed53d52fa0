"""A hostile endpoint for tests and benchmarks: answers every request with an event stream
that never ends, in pieces too small to be worth parsing, as fast as the socket takes it.
It runs in a thread of its own, so it floods whichever event loop the probe runs on."""

from __future__ import annotations

import socket
import threading
import time

HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n")
# What each attack repeats: blank SSE lines, comment lines, one-character events, and
# one-character tokens (whose answer text grows by a character an event).
FLOODS = {"blank": b"\n", "comment": b":\n", "tiny_events": b"data: {}\n\n",
          "tiny_tokens": b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n',
          # Each blank line in a chunk of its own: the chunked coding at its costliest.
          "tiny_chunks": b"1\r\n\n\r\n"}
FRAMED = {"tiny_chunks"}  # units that carry their own chunk framing
PIECE = 64 << 10


class Flood:
    """A server in a thread of its own (not on the probe's loop) that answers every request
    with a chunked event stream of ``unit`` repeated, as fast as the socket takes it, until
    the client goes or ``seconds`` pass."""

    def __init__(self, unit: bytes, seconds: float = 10.0, framed: bool = False) -> None:
        self.unit, self.seconds, self.framed = unit, seconds, framed
        self.sent = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        body = self.unit * (PIECE // len(self.unit))
        chunk = body if self.framed else b"%x\r\n%s\r\n" % (len(body), body)
        with conn:
            conn.recv(65536)  # the request (small, one read on loopback)
            deadline = time.monotonic() + self.seconds
            try:
                conn.sendall(HEAD)
                while time.monotonic() < deadline:
                    conn.sendall(chunk)
                    self.sent += len(body)
            except OSError:
                pass  # the probe hung up: the point

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accept (Linux)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(5)
