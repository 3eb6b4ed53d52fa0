"""A streaming server whose own clock is the truth for timing benchmarks: it stamps a request's
arrival with the kernel's receive time (SO_TIMESTAMPNS), not when its event loop got to it.

The simulator (``llmmon.sim.simulator``) stamps a request as received once its loop has read
and parsed it; with a busy neighbour and hundreds of streams on two cores that is late by its
own queueing, and an E2E judged against it is judged against a late truth. Here a request's
first and last bytes carry the kernel's stamps (``x-sim-first-byte-ns``,
``x-sim-received-ns``), and each token event the moment before its ``send``
(``x_sent_ns``), as the simulator's. The events are OpenAI chat chunks from the simulator's
own formats, one chunked-coding chunk per event, paced by ``--ttft`` and ``--itl``.

    python benchmarks/stamping_server.py [--ttft 0.05] [--itl 0.02]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing_accuracy import stamp_of, wait_readable

from llmmon.sim.formats import FORMATS

MARK = "x" * 19  # replaced by the send stamp right before the bytes go out
CHAT = FORMATS["/v1/chat/completions"]


class Connection:
    def __init__(self, sock: socket.socket, ttft: float, itl: float) -> None:
        self.sock, self.ttft, self.itl = sock, ttft, itl
        self.loop = asyncio.get_running_loop()
        self.buf = b""

    async def recv(self) -> tuple[bytes, int]:
        await wait_readable(self.loop, self.sock)
        data, anc, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(16))
        return data, stamp_of(anc)

    async def request(self) -> tuple[bytes, int, int] | None:
        """The next request's body and the kernel stamps of its first and last bytes."""
        first = last = 0
        while b"\r\n\r\n" not in self.buf:
            data, last = await self.recv()
            if not data:
                return None
            first = first or last
            self.buf += data
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(rest) < length:
            data, last = await self.recv()
            if not data:
                return None
            rest += data
        self.buf = rest[length:]
        return rest[:length], first, last

    async def send(self, piece: bytes, stamp: bool = False, end: bytes = b"") -> None:
        if stamp:
            piece = piece.replace(MARK.encode(), b"%019d" % time.monotonic_ns(), 1)
        await self.loop.sock_sendall(self.sock, b"%x\r\n%s\r\n%s" % (len(piece), piece, end))

    async def serve(self) -> None:
        while (got := await self.request()) is not None:
            body, first, last = got
            tokens = min(int(json.loads(body).get("max_tokens") or 16), 4096)
            head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Transfer-Encoding: chunked\r\nx-sim-first-byte-ns: %d\r\n"
                    b"x-sim-received-ns: %d\r\nCache-Control: no-cache\r\n\r\n"
                    % (first, last))
            await self.loop.sock_sendall(self.sock, head)
            await self.send(CHAT.opening("sim"))
            delays = [self.ttft] + [self.itl] * (tokens - 1)
            # The last token goes out with the end of the body, in one send: its stamp is the
            # end's too, and the truth for an E2E that ends where the body ends.
            closing = CHAT.closing("sim", (8, tokens), delays)
            end = b"%x\r\n%s\r\n0\r\n\r\n" % (len(closing), closing)
            for i, delay in enumerate(delays):
                await asyncio.sleep(delay)
                await self.send(CHAT.token("sim", f"{i + 1}, ", False, MARK), stamp=True,
                                end=end if i == len(delays) - 1 else b"")


async def main(ttft: float, itl: float) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    listener.setblocking(False)
    loop = asyncio.get_running_loop()
    print(f"stamping server listening on http://127.0.0.1:{listener.getsockname()[1]}/v1",
          flush=True)
    tasks = set()
    while True:
        sock, _ = await loop.sock_accept(listener)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = asyncio.create_task(_serve(Connection(sock, ttft, itl)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def _serve(conn: Connection) -> None:
    try:
        await conn.serve()
    except (ConnectionError, OSError):
        pass
    finally:
        conn.sock.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ttft", type=float, default=0.05)
    parser.add_argument("--itl", type=float, default=0.02)
    args = parser.parse_args()
    asyncio.run(main(args.ttft, args.itl))
