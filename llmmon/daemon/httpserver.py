"""A small HTTP/1.1 server on asyncio, shared by the exporter and the simulator.

Why not a framework: llmmon serves five fixed routes, must bound everything a client can
make it hold (connections, header bytes, body bytes, time), and must not add a second event
loop or thread pool beside the one its probes are timed on. This is about 150 lines of that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 16 << 10
MAX_BODY_BYTES = 1 << 20
HEAD_TIMEOUT = 10.0  # also the keep-alive idle limit
WRITE_TIMEOUT = 30.0  # a client that stops reading is dropped after this


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    query: dict[str, str] = field(default_factory=dict)  # the first value of each parameter


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # When set, the body is streamed with chunked encoding and ``body`` is ignored.
    stream: AsyncIterator[bytes] | None = None
    # Applied to each streamed piece at the last moment before it is written.
    before_write: Callable[[bytes], bytes] | None = None


Handler = Callable[[Request], Awaitable[Response]]


def text(status: int, message: str, **headers: str) -> Response:
    return Response(status, message.encode(), {"Content-Type": "text/plain; charset=utf-8",
                                               **headers})


class _BadRequest(Exception):
    pass


class HTTPServer:
    def __init__(self, handler: Handler, *, max_connections: int = 64) -> None:
        self._handler = handler
        self._max_connections = max_connections
        self._connections: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None
                    ) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(
            self._accept, host, port, ssl=ssl_context, limit=MAX_HEAD_BYTES,
            ssl_handshake_timeout=HEAD_TIMEOUT if ssl_context else None,
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            if len(self._connections) > self._max_connections:
                await _write(writer, text(503, "too many connections\n"), keep_alive=False)
                return
            await self._serve(reader, writer)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client went away or stalled; nothing to answer
        except asyncio.CancelledError:
            pass  # the server is closing; end quietly (asyncio logs a cancelled handler)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                async with asyncio.timeout(HEAD_TIMEOUT):
                    head = await reader.readuntil(b"\r\n\r\n")
                    request = _parse_head(head)
                    request.body = await _read_body(reader, request.headers)
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    raise
                return  # a clean close between requests
            except (_BadRequest, asyncio.LimitOverrunError, ValueError) as exc:
                await _write(writer, text(400, f"bad request: {exc}\n"), keep_alive=False)
                return
            try:
                response = await self._handler(request)
            except Exception:
                log.exception("handler failed for %s %s", request.method, request.path)
                response = text(500, "internal error\n")
            keep_alive = request.headers.get("connection", "").lower() != "close"
            await _write(writer, response, keep_alive, head_only=request.method == "HEAD")
            if not keep_alive:
                return


def _parse_head(head: bytes) -> Request:
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise _BadRequest("malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise _BadRequest("unsupported HTTP version")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadRequest("malformed header")
            headers[name.strip().lower()] = value.strip()
    url = urlsplit(target)
    try:
        query = {k: v[0] for k, v in parse_qs(url.query, max_num_fields=20).items()}
    except ValueError:
        raise _BadRequest("too many query parameters") from None
    return Request(method.upper(), url.path or "/", headers, query=query)


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "transfer-encoding" in headers:
        raise _BadRequest("chunked request bodies are not supported")
    length = int(headers.get("content-length", "0") or 0)
    if length < 0 or length > MAX_BODY_BYTES:
        raise _BadRequest("body too large")
    return await reader.readexactly(length) if length else b""


async def _write(writer: asyncio.StreamWriter, response: Response, keep_alive: bool,
                 head_only: bool = False) -> None:
    headers = dict(response.headers)
    headers.setdefault("Content-Type", "text/plain; charset=utf-8")
    if response.stream is None:
        headers["Content-Length"] = str(len(response.body))
    else:
        headers["Transfer-Encoding"] = "chunked"
    headers["Connection"] = "keep-alive" if keep_alive else "close"
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = ""
    head = f"HTTP/1.1 {response.status} {reason}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode("latin-1"))
    if response.stream is None:
        if not head_only:
            writer.write(response.body)
        await _drain(writer)
        return
    finish = response.before_write
    async for piece in response.stream:
        if piece:
            if finish is not None:
                piece = finish(piece)
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await _drain(writer)
    writer.write(b"0\r\n\r\n")
    await _drain(writer)


async def _drain(writer: asyncio.StreamWriter) -> None:
    async with asyncio.timeout(WRITE_TIMEOUT):
        await writer.drain()
