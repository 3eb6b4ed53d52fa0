"""The load probe: a bounded burst of concurrent requests against one endpoint, to watch
throughput under concurrency and not only single-request latency."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from llmmon.config import EndpointConfig, LoadConfig, Prompt
from llmmon.probe.result import ProbeResult
from llmmon.probe.run import Prepared, prepare, run_probe
from llmmon.probe.transport import ssl_context
from llmmon.probe.wire import Encoded, WireTransport, wire_client


@dataclass
class LoadResult:
    concurrency: int  # the most requests that were in flight (sent, not yet answered) at once
    requests: int
    succeeded: int
    output_tokens: int
    duration: float
    ttft_quantiles: tuple[float | None, float | None]  # p50, p99
    finished_unix: float
    spent_usd: float = 0.0
    spent_tokens: int = 0  # prompt and output tokens of every request, failed ones too
    errors: dict[str, int] = field(default_factory=dict)  # failed requests by reason
    # Per request, seconds from the worker asking to its last byte sent: the client's own
    # queueing (a pool, a busy loop), which no server figure should include.
    send_waits: list[float] = field(default_factory=list)

    @property
    def requests_per_second(self) -> float:
        return self.succeeded / self.duration if self.duration > 0 else 0.0

    @property
    def output_tokens_per_second(self) -> float:
        return self.output_tokens / self.duration if self.duration > 0 else 0.0

    @property
    def error_ratio(self) -> float:
        return 1.0 - self.succeeded / self.requests if self.requests else 0.0


def load_clients(endpoint: EndpointConfig, load: LoadConfig) -> list[httpx.AsyncClient]:
    """One client of one connection per stream (``wire.py``), sharing a TLS context. Streams
    sharing one pool queued for its connections and met httpcore's ConnectionNotAvailable
    retries (575 per 192 requests at 64 streams): their sends came late and the burst's
    figures read low."""
    context = ssl_context(endpoint)
    return [wire_client(endpoint, context) for _ in range(min(load.concurrency, load.requests))]


async def run_load(clients: Sequence[httpx.AsyncClient], endpoint: EndpointConfig,
                   load: LoadConfig) -> LoadResult:
    """``load.requests`` probes, one stream per client at a time, all within
    ``load.timeout``. Requests not started when the burst's time runs out are counted as
    failed."""
    return summarize(load, [await burst(clients, endpoint, load)])


@dataclass
class Burst:
    """What one process's share of a burst saw; shares merge exactly (``summarize``): every
    stamp is CLOCK_MONOTONIC, one clock for the whole machine."""

    results: list[ProbeResult]
    spans: list[tuple[int, int]]  # (sent, answered) of each request, monotonic ns
    waits: list[tuple[int, int]]  # (asked, sent)
    requests: int
    duration: float
    fired: int = 0  # requests sent by one non-blocking send when asked for (wire.py)


@dataclass
class _Next:
    """A stream's next request, built before it is asked for."""

    prompt: Prompt
    prepared: Prepared | None
    encoded: Encoded | None


async def burst(clients: Sequence[httpx.AsyncClient], endpoint: EndpointConfig,
                load: LoadConfig) -> Burst:
    """Every stream's connection is opened and its first request built before the clock;
    then the first requests go out in one loop, each a single ``send``. A stream builds its
    next request while the current one is out, and sends it the moment that one ends."""
    queue = iter(range(load.requests))
    out = Burst([], [], [], load.requests, 0.0)

    def take(client: httpx.AsyncClient) -> _Next | None:
        i = next(queue, None)
        if i is None:
            return None
        prompt = endpoint.prompts[i % len(endpoint.prompts)]
        prepared = prepare(client, endpoint, prompt)
        wire = _wire(client)
        encoded = Encoded(prepared.request) if prepared and wire else None
        return _Next(prompt, prepared, encoded)

    async def worker(client: httpx.AsyncClient, item: _Next | None, asked: int) -> None:
        while item is not None:
            following = take(client)  # built while this one is out
            result = await run_probe(client, endpoint, item.prompt, prepared=item.prepared)
            out.spans.append((result.sent_ns or asked, time.monotonic_ns()))
            if result.sent_ns is not None:
                out.waits.append((asked, result.sent_ns))
            out.results.append(result)
            if following is not None:
                await _connect(client)  # a connection the server closed: made again now
                asked, fired = _fire(client, following)
                out.fired += fired
            item = following

    streams = clients[:load.requests]
    try:  # connections made before the clock, within the burst's time
        async with asyncio.timeout(load.timeout):
            await asyncio.gather(*(_connect(c) for c in streams))
    except TimeoutError:
        pass  # those not made are made by their first request, which says why they fail
    firsts = [take(c) for c in streams]
    start, asked = time.perf_counter(), time.monotonic_ns()  # every first one asked now
    for client, item in zip(streams, firsts, strict=True):
        if item is not None:
            out.fired += _fire(client, item)[1]
    workers = [asyncio.create_task(worker(c, item, asked))
               for c, item in zip(streams, firsts, strict=True)]
    _, pending = await asyncio.wait(workers, timeout=load.timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    out.duration = time.perf_counter() - start
    return out


def _wire(client: httpx.AsyncClient) -> WireTransport | None:
    transport = getattr(client, "stamping", None)
    return transport if isinstance(transport, WireTransport) else None


async def _connect(client: httpx.AsyncClient) -> None:
    if wire := _wire(client):
        await wire.connect()


def _fire(client: httpx.AsyncClient, item: _Next) -> tuple[int, bool]:
    """Send ``item`` now where it can be (else ``run_probe`` sends it): when it was asked,
    and whether it went."""
    asked = time.monotonic_ns()
    wire = _wire(client)
    return asked, bool(item.encoded and wire and wire.fire(item.encoded))


def summarize(load: LoadConfig, bursts: Sequence[Burst]) -> LoadResult:
    results = [r for b in bursts for r in b.results]
    spans = [s for b in bursts for s in b.spans]
    waits = [w for b in bursts for w in b.waits]
    ok = [r for r in results if r.ok]
    errors: Counter[str] = Counter(r.error for r in results if r.error)
    if unsent := sum(b.requests for b in bursts) - len(results):  # cut by the timeout
        errors["timeout"] += unsent
    ttfts = sorted(r.ttft for r in ok if r.ttft is not None)
    return LoadResult(
        concurrency=most_at_once(spans), requests=load.requests, succeeded=len(ok),
        output_tokens=sum(r.output_tokens or 0 for r in ok),
        duration=max(b.duration for b in bursts),
        ttft_quantiles=(_quantile(ttfts, 0.5), _quantile(ttfts, 0.99)),
        finished_unix=time.time(), spent_usd=sum(r.cost_usd for r in results),
        spent_tokens=sum((r.prompt_tokens or 0) + (r.output_tokens or 0) for r in results),
        errors=dict(errors), send_waits=[(sent - asked) / 1e9 for asked, sent in waits],
    )


def most_at_once(spans: list[tuple[int, int]]) -> int:
    """The most spans that overlap at one instant (an end at the instant another starts
    does not overlap it)."""
    edges = sorted([(begin, 1) for begin, _ in spans] + [(end, -1) for _, end in spans])
    most = now = 0
    for _, step in edges:  # at a tie, the end (-1) sorts first
        now += step
        most = max(most, now)
    return most


def _quantile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank quantile of sorted values."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]
