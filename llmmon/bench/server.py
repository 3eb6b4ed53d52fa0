"""What the model server says of itself: its Prometheus gauges during a step (queue depth,
running batch, KV-cache use) and the model it serves (name, size, quantisation, context: read
by ``probe.modelinfo``, which the daemon uses too)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from llmmon.bench.model import ModelInfo, ServerSample
from llmmon.config import EndpointConfig
from llmmon.probe.modelinfo import fetch_model_info
from llmmon.probe.transport import make_client

# Each server's names for the same three gauges (vLLM v0 and v1, SGLang, llama.cpp
# --metrics, TGI). Summed over their series: one server, one model per scrape.
QUEUE = ("vllm:num_requests_waiting", "sglang:num_queue_reqs", "llamacpp:requests_deferred",
         "tgi_queue_size")
RUNNING = ("vllm:num_requests_running", "sglang:num_running_reqs",
           "llamacpp:requests_processing", "tgi_batch_current_size")
KV_CACHE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "sglang:token_usage",
            "llamacpp:kv_cache_usage_ratio")
METRICS_LIMIT = 16 << 20  # bytes of one scrape


def read_gauges(text: str) -> dict[str, float]:
    """Queue, running and KV-cache figures from one exposition (absent ones left out)."""
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + float(sample.value)
    out = {}
    for key, names in (("queue", QUEUE), ("running", RUNNING), ("kv_cache", KV_CACHE)):
        found = [sums[n] for n in names if n in sums]
        if found:
            out[key] = found[0]
    return out


def summarize(samples: list[dict[str, float]]) -> ServerSample | None:
    if not samples:
        return None
    out = ServerSample(samples=len(samples))
    for key in ("queue", "running", "kv_cache"):
        values = [s[key] for s in samples if key in s]
        if values:
            setattr(out, f"{key}_mean", sum(values) / len(values))
            setattr(out, f"{key}_max", max(values))
    return out


class ServerWatcher:
    """Samples ``url`` every ``every`` seconds while a step runs."""

    def __init__(self, url: str, every: float = 0.5) -> None:
        self.url, self.every = url, every
        self.samples: list[dict[str, float]] = []
        self._task: asyncio.Task[None] | None = None
        self.problem: str | None = None

    async def __aenter__(self) -> ServerWatcher:
        self.samples = []
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                try:
                    response = await client.get(self.url)
                    if len(response.content) <= METRICS_LIMIT:
                        self.samples.append(read_gauges(response.text))
                except (httpx.HTTPError, ValueError) as exc:
                    self.problem = f"{type(exc).__name__}"  # said once in the report
                await asyncio.sleep(self.every)

    def summary(self) -> ServerSample | None:
        return summarize(self.samples)


# --- model identity --------------------------------------------------------------------


async def model_info(endpoint: EndpointConfig) -> ModelInfo:
    """Whatever the server tells about its model (``probe.modelinfo``), asked on a client of
    its own with the endpoint's TLS settings; what the name says where the server says
    nothing."""
    async with make_client(endpoint, 1) as client:
        return await fetch_model_info(client, endpoint)


def first_served(names: Iterable[str | None]) -> str | None:
    return next((n for n in names if n), None)
