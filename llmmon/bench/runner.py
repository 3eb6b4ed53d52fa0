"""One step of a benchmark: requests at a fixed concurrency, or arriving at a fixed rate,
each a probe (so bench times exactly as the daemon does: kernel receive stamps, the same
verdicts), bounded in count and in time.

Every request in flight has a connection of its own: clients are kept in a free list per
endpoint and a request takes one or opens one, so there is no shared pool to queue behind
and no retry storm when many streams start at once."""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import httpx

from llmmon.bench.model import RequestRecord
from llmmon.config import EndpointConfig, Prompt
from llmmon.probe.result import ProbeResult
from llmmon.probe.run import run_probe
from llmmon.probe.transport import make_client, ssl_context

MAX_IN_FLIGHT = 1024  # a rate step never has more requests open than this


@dataclass
class StepPlan:
    mode: str  # "concurrency" or "rate"
    load: float
    requests: int | None  # at most this many requests start...
    duration: float | None  # ...and none after this many seconds
    arrival: str = "constant"  # rate mode: "constant" or "poisson"
    seed: int = 0


@dataclass
class StepResult:
    records: list[RequestRecord]
    duration: float  # first start to last end
    cpu_seconds: float  # this process's CPU over the step


class Clients:
    """Clients by endpoint, one connection each, reused by the next request."""

    def __init__(self) -> None:
        self._free: dict[str, list[httpx.AsyncClient]] = {}
        self._all: list[httpx.AsyncClient] = []
        self._tls: dict[str, ssl.SSLContext | None] = {}  # one TLS context per endpoint

    def take(self, endpoint: EndpointConfig) -> httpx.AsyncClient:
        free = self._free.setdefault(endpoint.name, [])
        if free:
            return free.pop()
        if endpoint.name not in self._tls:
            self._tls[endpoint.name] = ssl_context(endpoint)
        client = make_client(endpoint, 1, self._tls[endpoint.name])
        self._all.append(client)
        return client

    def prepare(self, endpoint: EndpointConfig, count: int) -> None:
        """Have ``count`` clients ready before a step's clock starts."""
        ready = [self.take(endpoint) for _ in range(count)]
        for client in ready:
            self.give(endpoint, client)

    def give(self, endpoint: EndpointConfig, client: httpx.AsyncClient) -> None:
        self._free[endpoint.name].append(client)

    async def close(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self._all), return_exceptions=True)
        self._all.clear()
        self._free.clear()


class Requests:
    """The i-th request of a step: the endpoints take turns request by request (so drift
    hits each alike), and each endpoint gets the same prompts in the same order."""

    def __init__(self, endpoints: list[EndpointConfig], prompts: list[Prompt],
                 limit: int | None, deadline: float | None) -> None:
        self.endpoints, self.prompts = endpoints, prompts
        self.limit, self.deadline = limit, deadline
        self.next = 0

    def __iter__(self) -> Iterator[tuple[EndpointConfig, Prompt]]:
        return self

    def __next__(self) -> tuple[EndpointConfig, Prompt]:
        over_time = self.deadline is not None and time.monotonic() >= self.deadline
        if over_time or (self.limit is not None and self.next >= self.limit):
            raise StopIteration
        i, k = self.next, len(self.endpoints)
        self.next += 1
        return self.endpoints[i % k], self.prompts[(i // k) % len(self.prompts)]


def record(result: ProbeResult, start: float, endpoint: str) -> RequestRecord:
    return RequestRecord(
        start=start, ok=result.ok, error=result.error, ttft=result.ttft,
        itl=list(result.itl) if result.ok else [], tpot=result.tpot, e2e=result.e2e,
        output_tokens=result.output_tokens, prompt_tokens=result.prompt_tokens,
        check_passed=result.check_passed, events=result.content_chunks + result.end_chunks,
        endpoint=endpoint, served_model=result.served_model)


async def run_step(endpoints: list[EndpointConfig], prompts: list[Prompt], plan: StepPlan,
                   clients: Clients, on_record: Callable[[RequestRecord], None] | None = None
                   ) -> StepResult:
    """Run one step; ``on_record`` sees each request as it ends (live progress)."""
    if plan.mode == "concurrency":
        for endpoint in endpoints:
            clients.prepare(endpoint, int(plan.load))
    began, cpu = time.monotonic(), time.process_time()
    deadline = began + plan.duration if plan.duration else None
    requests = Requests(endpoints, prompts, plan.requests, deadline)
    records: list[RequestRecord] = []
    ends: list[float] = []

    async def one(endpoint: EndpointConfig, prompt: Prompt) -> None:
        client = clients.take(endpoint)
        start = time.monotonic()
        try:
            result = await run_probe(client, endpoint, prompt)
        finally:
            clients.give(endpoint, client)
        ends.append(time.monotonic())
        rec = record(result, start - began, endpoint.name)
        records.append(rec)
        if on_record:
            on_record(rec)

    if plan.mode == "concurrency":
        async def worker() -> None:
            for endpoint, prompt in requests:
                await one(endpoint, prompt)

        await asyncio.gather(*(worker() for _ in range(max(1, int(plan.load)))))
    else:
        await _arrivals(plan, requests, one, began)
    duration = (max(ends) - began) if ends else 0.0
    return StepResult(sorted(records, key=lambda r: r.start), duration,
                      time.process_time() - cpu)


async def _arrivals(plan: StepPlan, requests: Requests,
                    one: Callable[[EndpointConfig, Prompt], Awaitable[None]], began: float
                    ) -> None:
    """Start requests at ``plan.load`` per second, evenly or as a Poisson process."""
    rng = random.Random(plan.seed)
    tasks: set[asyncio.Task[None]] = set()
    at = 0.0
    for endpoint, prompt in requests:
        delay = began + at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        while len(tasks) >= MAX_IN_FLIGHT:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.ensure_future(one(endpoint, prompt))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        gap = 1.0 / plan.load
        at += rng.expovariate(plan.load) if plan.arrival == "poisson" else gap
    if tasks:
        await asyncio.gather(*tasks)
