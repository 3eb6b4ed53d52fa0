"""HTTP/1.1 on one connection, parsed by h11 (httpx's own parser, already a dependency through
httpcore): the request and response types the routes see, and the loop that reads requests and
writes responses on a connection until it closes.

h11 answers for the wire format (request line, header syntax, Host, Content-Length and
chunked framing, keep-alive from the version and ``Connection``); this module adds llmmon's
limits: a head of at most 16 KiB, a body of at most 1 MiB, the whole request (the TLS
handshake too, on a new connection) within ``HEAD_TIMEOUT`` of the wait's start however
slowly it drips, the next request on a kept-alive connection beginning within
``IDLE_TIMEOUT``, and every write drained within ``WRITE_TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import h11

log = logging.getLogger("llmmon.daemon.httpserver")

MAX_HEAD_BYTES = 16 << 10
MAX_BODY_BYTES = 1 << 20
HEAD_TIMEOUT = 10.0  # a whole request (and a new connection's TLS handshake), not per byte
IDLE_TIMEOUT = 5.0  # a kept-alive connection's wait for its next request (uvicorn's default)
WRITE_TIMEOUT = 10.0  # a client that stops reading is dropped after this
_READ_SIZE = 64 << 10
_FRAMING = {"content-length", "transfer-encoding", "connection"}  # this module's to set


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
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


_said: dict[str, float] = {}
_SAY_EVERY = 60.0


def warn(kind: str, message: str, *args: object, exc_info: bool = False) -> None:
    """Log a warning of this kind at most once a minute: clients must not set the log's rate."""
    now = time.monotonic()
    if now - _said.get(kind, -_SAY_EVERY) >= _SAY_EVERY:
        _said[kind] = now
        log.warning(message + " (said at most once a minute)", *args, exc_info=exc_info)


class _Refused(Exception):
    """The request is answered with this status, and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Connection:
    """Serves requests on one connection until either side closes it. ``waiting(True)`` is
    called whenever it starts waiting for a request (the server may then close it to make
    room), ``waiting(False)`` once a whole request is in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 handler: Handler, waiting: Callable[[bool], None],
                 max_body: int = MAX_BODY_BYTES) -> None:
        self._reader, self._writer, self._handler = reader, writer, handler
        self._waiting = waiting
        self._max_body = max_body
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        self._eof = False
        self._started = False  # a byte of the next request is in: the idle limit is over

    async def serve(self, deadline: float) -> None:
        """``deadline`` (loop time): when the first request must be in by."""
        loop = asyncio.get_running_loop()
        idle_until = deadline
        while True:
            self._waiting(True)
            try:
                request = await self._read_request(deadline, idle_until)
            except _Refused as exc:
                if not self._eof and self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await self._write(text(exc.status, f"{exc}\n"), head=False)
                return
            if request is None:
                return  # closed, or no request in time: closed without a word, as Go does
            self._waiting(False)
            try:
                response = await self._handler(request)
            except Exception:
                warn("handler", "handler failed for %s %s", request.method, request.path,
                     exc_info=True)
                response = text(500, "internal error\n")
            await self._write(response, head=request.method == "HEAD")
            if self._h11.our_state is not h11.DONE or self._h11.their_state is not h11.DONE:
                return  # HTTP/1.0, "Connection: close", or an error: close after the response
            # A turn for the loop between requests: thousands of pipelined requests arrive in
            # one read, and answering them all at once would hold every probe and scrape.
            await asyncio.sleep(0)
            self._h11.start_next_cycle()
            self._started = bool(self._h11.trailing_data[0])  # pipelined
            now = loop.time()
            deadline, idle_until = now + HEAD_TIMEOUT, now + IDLE_TIMEOUT

    async def _read_request(self, deadline: float, idle_until: float) -> Request | None:
        """The next whole request; None when the client closed or ran out of time."""
        try:
            event = await self._next_event(deadline, idle_until)
            if not isinstance(event, h11.Request):
                return None  # ConnectionClosed
            request = _request(event, self._max_body)
            body = bytearray()
            while True:
                if self._h11.they_are_waiting_for_100_continue:
                    go_on = h11.InformationalResponse(status_code=100, headers=[])
                    self._writer.write(self._h11.send(go_on) or b"")
                part = await self._next_event(deadline, deadline)
                if isinstance(part, h11.EndOfMessage):
                    request.body = bytes(body)
                    return request
                if not isinstance(part, h11.Data):
                    return None
                body += part.data
                if len(body) > self._max_body:
                    raise _Refused(413, "body too large")
        except h11.RemoteProtocolError as exc:
            raise _Refused(exc.error_status_hint, str(exc)) from None
        except TimeoutError:
            return None

    async def _next_event(self, deadline: float, idle_until: float) -> h11.Event:
        """h11's next event, reading as needed: nothing at all by ``idle_until``, or not the
        whole event by ``deadline``, is a TimeoutError."""
        while (event := self._h11.next_event()) is h11.NEED_DATA:
            async with asyncio.timeout_at(deadline if self._started else min(deadline, idle_until)):
                data = await self._reader.read(_READ_SIZE)
            self._eof, self._started = not data, True
            self._h11.receive_data(data)
        assert not isinstance(event, type)  # PAUSED is not expected: one request at a time
        return event

    async def _write(self, response: Response, head: bool) -> None:
        try:
            reason = HTTPStatus(response.status).phrase.encode()
        except ValueError:
            reason = b""
        headers = [(k.encode("latin-1"), v.encode("latin-1"))
                   for k, v in response.headers.items() if k.lower() not in _FRAMING]
        if not any(k.lower() == b"content-type" for k, _ in headers):
            headers.append((b"Content-Type", b"text/plain; charset=utf-8"))
        if response.stream is None:
            headers.append((b"Content-Length", b"%d" % len(response.body)))
        else:
            headers.append((b"Transfer-Encoding", b"chunked"))
        send, data = self._h11.send, self._h11.send_with_data_passthrough
        start = send(h11.Response(status_code=response.status, headers=headers, reason=reason))
        if response.stream is None or head:  # one write: head, body and end together
            body = data(h11.Data(data=response.body)) if response.body and not head else None
            self._writer.write(b"".join([start or b"", *(body or ()),
                                         send(h11.EndOfMessage()) or b""]))
            await self._drain()
            return
        self._writer.write(start or b"")
        # Pieces are framed here, not by h11 (its framing is 20 times slower, and stands
        # between the stamp and the write): chunked, or raw for an HTTP/1.0 client.
        chunked = b"\r\ntransfer-encoding: chunked\r\n" in (start or b"").lower()
        finish = response.before_write
        async for piece in response.stream:
            if piece:
                if finish is not None:
                    piece = finish(piece)
                self._writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                await self._drain()
        self._writer.write(send(h11.EndOfMessage()) or b"")
        await self._drain()

    async def _drain(self) -> None:
        async with asyncio.timeout(WRITE_TIMEOUT):
            await self._writer.drain()


def _request(event: h11.Request, max_body: int) -> Request:
    if not event.http_version.startswith(b"1."):
        raise _Refused(505, "unsupported HTTP version")
    headers: dict[str, str] = {}
    for name, value in event.headers:
        key, text_value = name.decode("latin-1"), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text_value}" if key in headers else text_value
    if "transfer-encoding" in headers and "content-length" in headers:
        raise _Refused(400, "both Transfer-Encoding and Content-Length")  # a smuggling attempt
    if int(headers.get("content-length", "0")) > max_body:  # h11 checked it is digits
        raise _Refused(413, "body too large")
    try:
        url = urlsplit(event.target.decode("ascii"))  # h11 checked it is printable ASCII
        query = {k: v[0] for k, v in parse_qs(url.query, max_num_fields=20).items()}
    except ValueError:  # http://[::1/ and the like, or too many parameters
        raise _Refused(400, "malformed request target") from None
    return Request(event.method.decode("ascii"), url.path or "/", headers, query=query)
