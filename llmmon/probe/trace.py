"""Where a probe's time went: httpcore's trace events as monotonic stamps, and the HTTP phases
(dns, connect, tls, send, wait) computed from them."""

from __future__ import annotations

import time
from typing import Any

NS = 1e9


class Stamped:
    """A network stream that knows when its bytes moved (llmmon's backend, ``backend.py``).
    A plain base class, not a runtime-checkable Protocol: isinstance() against one of those
    walks its members and cost 8 % of a probe's CPU."""

    dns_seconds: float
    last_rx_ns: int | None  # kernel receive time of the last read, CLOCK_MONOTONIC ns
    last_tx_ns: int | None  # just before the last write's send, CLOCK_MONOTONIC ns
    first_tx_ns: int | None = None  # just before a request's first byte (heads.py sets it)

    def rtt_seconds(self) -> float | None:
        """The kernel's smoothed round-trip time of the connection, or None."""
        raise NotImplementedError


RETRY_WINDOW_NS = 100_000_000  # see Trace.closed_as_reused


class Trace:
    """Collects httpcore's trace events (``extensions={"trace": trace}``)."""

    def __init__(self) -> None:
        self.at: dict[str, int] = {}
        self.began_ns: int | None = None  # just before the request was handed to the client
        self.stream: object = None  # the response's network stream, once there is one

    @property
    def stamped(self) -> Stamped | None:
        """The stream, when it is llmmon's and has stamped a read (the response head)."""
        stream = self.stream
        return stream if isinstance(stream, Stamped) and stream.last_rx_ns is not None else None

    def rtt(self) -> float | None:
        """The round-trip time of the response's connection, read once its head has come.
        The kernel's estimate takes samples only from ACKs of what this side sent, and the
        request is all sent by then: the body cannot change it. Later is too late: httpx
        closes the response as its body ends, and the pool then shuts a connection the
        server is closing (llama-server closes after a stream)."""
        return self.stream.rtt_seconds() if isinstance(self.stream, Stamped) else None

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        self.at[name] = time.monotonic_ns()

    def closed_as_reused(self) -> bool:
        """Whether a response that never came is the race of a kept-alive connection's close
        with the request that reused it (llama-server closes a streamed response's
        connection just after its end): the close comes within a one-way trip of the send,
        and the server never saw the request, so it may be asked again on a new connection,
        as browsers do. A later close may follow work the server did: no."""
        sent = self.at.get("http11.send_request_body.complete")
        return ("connection.connect_tcp.started" not in self.at and sent is not None
                and time.monotonic_ns() - sent < RETRY_WINDOW_NS)

    def began(self) -> int | None:
        """When the request began on the wire: its first byte (llmmon's stream stamps it),
        else the connect where this probe made its connection, else when the request was
        handed to the client. The client's own work before that (its pool, the request's
        encoding) is not the server's time."""
        return self._first_tx() or self.at.get("connection.connect_tcp.started") \
            or self.began_ns

    def setup_ns(self) -> int:
        """What this probe's own connection took to set up (name lookup, connect, TLS), for
        its E2E: a user waits for it. Only the span itself: a client busy with other streams
        between the connect and the request's first byte is not the server's time (it was
        3 to 7 ms of 16 streams starting together on a busy machine). 0 on a kept
        connection, and where ``began`` is the connect already."""
        start = self.at.get("connection.connect_tcp.started")
        end = self.at.get("connection.start_tls.complete") \
            or self.at.get("connection.connect_tcp.complete")
        return end - start if self._first_tx() and start and end else 0

    def _first_tx(self) -> int | None:
        stream = self.stream
        return stream.first_tx_ns if isinstance(stream, Stamped) else None

    def span(self, start: str, end: str) -> float | None:
        begin, finish = self.at.get(start + ".started"), self.at.get(end + ".complete")
        return (finish - begin) / NS if begin is not None and finish is not None else None

    def phases(self) -> dict[str, float]:
        sent = self.at.get("http11.send_request_body.complete")
        headers = self.at.get("http11.receive_response_headers.complete")
        spans = {
            "connect": self.span("connection.connect_tcp", "connection.connect_tcp"),
            "tls": self.span("connection.start_tls", "connection.start_tls"),
            "send": self.span("http11.send_request_headers", "http11.send_request_body"),
            "wait": (headers - sent) / NS if sent and headers else None,
        }
        dns = self.stream.dns_seconds if isinstance(self.stream, Stamped) else None
        return split_phases(spans, dns, sent=sent is not None)


def split_phases(spans: dict[str, float | None], dns: float | None, sent: bool
                 ) -> dict[str, float]:
    """The phases that happened. httpcore's connect span includes name resolution; only
    llmmon's backend times it apart (``dns``), and then it is taken out of connect. A request
    that was sent without a connect span went over a pooled connection: its dns, connect and
    tls phases are 0."""
    spans = dict(spans)
    connect = spans.get("connect")
    if dns is not None:
        spans["dns"] = dns if connect is not None else None
        if connect is not None:
            spans["connect"] = connect - dns
    if sent:
        for phase in ("dns", "connect", "tls"):
            if phase in spans and spans[phase] is None:
                spans[phase] = 0.0
    return {k: v for k, v in spans.items() if v is not None}
