"""A load stream's connection: one per stream, opened before the burst's clock starts, and a
request sent with one ``send`` the moment it is asked for.

httpcore's pool takes its locks through anyio, and each acquisition gives the event loop a
turn: with 256 streams starting at once, every request waited for all the others' starts
before its own bytes left (asked→sent p50 65 ms, ``benchmarks/load_start.py``). Here the
request is encoded by h11 before it is asked for (``encode``), and sending it (``fire``) is
one non-blocking ``send`` on the stamped socket, no turn given away. The response head is read
by the same h11 connection; a chunked body is then read straight from the stream as every
probe's is (``streamed.py``), and anything else through h11 here.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import h11
import httpcore
import httpx

from llmmon.config import EndpointConfig
from llmmon.probe.backend import StampingBackend
from llmmon.probe.heads import HeadAligned
from llmmon.probe.trace import Trace
from llmmon.probe.transport import ProbeClient, httpx_errors

READ_BYTES = 65536
Stream = Any  # backend.StampedStream or tls.TLSStream: HeadAligned, with send_now


def wire_client(endpoint: EndpointConfig, context: ssl.SSLContext | None) -> ProbeClient:
    """A probe client of one connection, for one load stream."""
    return ProbeClient(WireTransport(endpoint.url, context, endpoint.timeout), endpoint.timeout)


class Encoded:
    """A request encoded for the wire, and the h11 connection that will read its answer."""

    def __init__(self, request: httpx.Request) -> None:
        self.request = request
        self.h11 = h11.Connection(h11.CLIENT)
        body = request.read()
        self.data = self.h11.send(h11.Request(
            method=request.method, target=request.url.raw_path,
            headers=[*request.headers.raw, *([] if "content-length" in request.headers
                                             else [(b"Content-Length", b"%d" % len(body))])]))
        self.data += self.h11.send(h11.Data(data=body)) + self.h11.send(h11.EndOfMessage())
        self.rest: bytes | None = None  # after fire(): what the socket did not take at once


class WireTransport(httpx.AsyncBaseTransport):
    """One connection to ``url``'s origin, for one load stream at a time."""

    def __init__(self, url: str, ssl_context: ssl.SSLContext | None, timeout: float) -> None:
        parsed = httpx.URL(url)
        self._host, self._tls = parsed.host, parsed.scheme == "https"
        self._port = parsed.port or (443 if self._tls else 80)
        self._context, self._timeout = ssl_context, timeout
        self._stream: Stream | None = None
        self._fired: Encoded | None = None
        self._broken: list[Stream] = []  # a send failed on it: closed with the next close

    async def connect(self) -> None:
        """Open the connection now (before the burst's clock) unless one is open and idle.
        Failures are left for the request, which reports them as probes do."""
        if self._stream is not None and not self._stream.get_extra_info("is_readable"):
            return
        await self._close()
        try:
            with httpx_errors():
                self._stream = await self._open()
        except httpx.HTTPError:
            self._stream = None

    async def _open(self) -> Stream:
        stream = await StampingBackend().connect_tcp(
            self._host, self._port, self._timeout,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        if self._tls:
            assert self._context is not None
            stream = await stream.start_tls(self._context, self._host, self._timeout)
        return stream

    def fire(self, encoded: Encoded) -> bool:
        """Send ``encoded`` now, without waiting, on the open connection: whether it went (or
        began to). Not sent here, it is sent when the probe hands it over."""
        if self._stream is None or self._fired is not None:
            return False
        try:
            encoded.rest = self._stream.send_now(encoded.data)
        except httpcore.WriteError:  # the probe sends it on a new connection
            self._broken.append(self._stream)
            self._stream = None
            return False
        self._fired = encoded
        return True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        encoded = self._fired if self._fired is not None \
            and self._fired.request is request else None
        self._fired = None
        trace: Trace | None = request.extensions.get("trace")
        try:
            return await self._exchange(request, encoded, trace)
        except BaseException:
            await self._close()  # a request that failed half-way leaves nothing to reuse
            raise

    async def _exchange(self, request: httpx.Request, encoded: Encoded | None,
                        trace: Trace | None) -> httpx.Response:
        with httpx_errors():
            if encoded is None:  # not fired: sent now, on a connection made now if need be
                encoded = Encoded(request)
                if self._stream is None or self._stream.get_extra_info("is_readable"):
                    await self._close()
                    self._stream = await self._opened(trace)
                encoded.rest = self._stream.send_now(encoded.data)
            stream = self._stream
            assert stream is not None
            if encoded.rest:
                await stream.finish_send(encoded.rest)
            _stamp(trace, stream)
            response = await self._head(stream, encoded.h11)
        if trace is not None:
            trace.at["http11.receive_response_headers.complete"] = _now()
        return httpx.Response(
            status_code=response.status_code, headers=response.headers,
            stream=_Body(self, stream, encoded.h11),
            extensions={"network_stream": stream, "http_version": b"HTTP/1.1",
                        "reason_phrase": response.reason})

    async def _opened(self, trace: Trace | None) -> Stream:
        if trace is not None:
            trace.at["connection.connect_tcp.started"] = _now()
        stream = await self._open()
        if trace is not None:
            trace.at["connection.connect_tcp.complete"] = _now()
        return stream

    async def _head(self, stream: Stream, conn: h11.Connection) -> h11.Response:
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc)) from exc
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.read(READ_BYTES))
            elif isinstance(event, h11.Response):
                return event
            elif isinstance(event, h11.ConnectionClosed):
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            # an InformationalResponse (1xx): the real one follows

    async def _close(self) -> None:
        streams, self._stream, self._broken = [self._stream, *self._broken], None, []
        for stream in streams:
            if stream is not None:
                await stream.aclose()

    def _done(self, stream: Stream, conn: h11.Connection, clean: bool) -> bool:
        """After a response: whether the connection serves the next request."""
        keep = clean and conn.our_state is h11.DONE and conn.their_state is h11.DONE \
            and not stream.has_pending
        if not keep and self._stream is stream:
            self._stream = None
        return keep

    async def aclose(self) -> None:
        await self._close()


class _Body(httpx.AsyncByteStream):
    """The body through h11: what the probe does not read itself (a length, an error's
    message), and the empty last chunk it hands back after reading a chunked one."""

    def __init__(self, transport: WireTransport, stream: Stream, conn: h11.Connection) -> None:
        self._transport, self._stream, self._conn = transport, stream, conn
        self._ended = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with httpx_errors():
            while not self._ended:
                try:
                    event = self._conn.next_event()
                except h11.RemoteProtocolError as exc:
                    raise httpx.RemoteProtocolError(str(exc)) from exc
                if event is h11.NEED_DATA:
                    self._conn.receive_data(await self._stream.read(READ_BYTES))
                elif isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    self._ended = isinstance(event, h11.EndOfMessage)
                    if not self._ended:
                        raise httpx.RemoteProtocolError("peer closed connection without "
                                                        "sending complete message body")

    async def aclose(self) -> None:
        if not self._transport._done(self._stream, self._conn, self._ended):
            await self._stream.aclose()


def _stamp(trace: Trace | None, stream: HeadAligned) -> None:
    """The request's send stamps, where httpcore would have put its trace events."""
    if trace is not None:
        trace.stream = stream
        if stream.first_tx_ns is not None:
            trace.at["http11.send_request_headers.started"] = stream.first_tx_ns
        if stream.last_tx_ns is not None:
            trace.at["http11.send_request_body.complete"] = stream.last_tx_ns


def _now() -> int:
    return time.monotonic_ns()
