"""The load probe: a bounded burst of concurrent requests against one endpoint, to watch
throughput under concurrency and not only single-request latency."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from llmmon.config import EndpointConfig, LoadConfig
from llmmon.probe.result import ProbeResult
from llmmon.probe.run import run_probe


@dataclass
class LoadResult:
    concurrency: int
    requests: int
    succeeded: int
    output_tokens: int
    duration: float
    ttft_quantiles: tuple[float | None, float | None]  # p50, p99
    finished_unix: float
    spent_usd: float = 0.0
    spent_tokens: int = 0  # prompt and output tokens of every request, failed ones too
    errors: dict[str, int] = field(default_factory=dict)  # failed requests by reason

    @property
    def requests_per_second(self) -> float:
        return self.succeeded / self.duration if self.duration > 0 else 0.0

    @property
    def output_tokens_per_second(self) -> float:
        return self.output_tokens / self.duration if self.duration > 0 else 0.0

    @property
    def error_ratio(self) -> float:
        return 1.0 - self.succeeded / self.requests if self.requests else 0.0


async def run_load(client: httpx.AsyncClient, endpoint: EndpointConfig, load: LoadConfig
                   ) -> LoadResult:
    """``load.requests`` probes, ``load.concurrency`` at a time, all within ``load.timeout``.

    Requests not started when the burst's time runs out are counted as failed."""
    queue = iter(range(load.requests))
    results: list[ProbeResult] = []

    async def worker() -> None:
        for i in queue:
            prompt = endpoint.prompts[i % len(endpoint.prompts)]
            results.append(await run_probe(client, endpoint, prompt))

    start = time.perf_counter()
    workers = [asyncio.create_task(worker()) for _ in range(min(load.concurrency, load.requests))]
    _, pending = await asyncio.wait(workers, timeout=load.timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    duration = time.perf_counter() - start
    ok = [r for r in results if r.ok]
    errors: Counter[str] = Counter(r.error for r in results if r.error)
    if unsent := load.requests - len(results):  # cut by the burst's timeout
        errors["timeout"] += unsent
    ttfts = sorted(r.ttft for r in ok if r.ttft is not None)
    return LoadResult(
        concurrency=len(workers), requests=load.requests, succeeded=len(ok),
        output_tokens=sum(r.output_tokens or 0 for r in ok), duration=duration,
        ttft_quantiles=(_quantile(ttfts, 0.5), _quantile(ttfts, 0.99)),
        finished_unix=time.time(), spent_usd=sum(r.cost_usd for r in results),
        spent_tokens=sum((r.prompt_tokens or 0) + (r.output_tokens or 0) for r in results),
        errors=dict(errors),
    )


def _quantile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank quantile of sorted values."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]
