"""What the model server says of itself: its Prometheus gauges during a step (queue depth,
running batch, KV-cache use) and the model it serves (name, size, quantisation, context)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from llmmon.bench.model import ModelInfo, ServerSample
from llmmon.config import EndpointConfig
from llmmon.probe.body import TooLarge, read_body
from llmmon.probe.transport import make_client
from llmmon.providers import get_provider

log = logging.getLogger(__name__)

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

_SIZE = re.compile(r"^\s*([\d.]+)\s*([KMBT])\s*$", re.IGNORECASE)
_SCALE = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}


def parameters_from(text: Any) -> int | None:
    """``"135M"``, ``"8.0B"`` → a count of parameters."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return int(text)
    match = _SIZE.match(str(text or ""))
    return int(float(match.group(1)) * _SCALE[match.group(2).lower()]) if match else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def from_openai_models(data: Any, model: str) -> ModelInfo | None:
    """llama.cpp's `meta` (n_params, size, n_ctx_train) or vLLM's `max_model_len`, from the
    listed model that is the configured one (or the only one)."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        return None
    chosen = next((m for m in items if isinstance(m, dict) and m.get("id") == model), None)
    if chosen is None and len(items) == 1 and isinstance(items[0], dict):
        chosen = items[0]
    if chosen is None:
        return None
    meta = _dict(chosen.get("meta"))
    return ModelInfo(served_model=str(chosen.get("id")), parameters=_int(meta.get("n_params")),
                     size_bytes=_int(meta.get("size")),
                     context_length=_int(chosen.get("max_model_len")) or _int(
                         meta.get("n_ctx_train")), source="/v1/models")


def from_ollama_show(data: Any, model: str) -> ModelInfo | None:
    if not isinstance(data, dict):
        return None
    details, info = _dict(data.get("details")), _dict(data.get("model_info"))
    context = next((_int(v) for k, v in info.items() if k.endswith(".context_length")), None)
    return ModelInfo(served_model=model,
                     parameters=_int(info.get("general.parameter_count"))
                     or parameters_from(details.get("parameter_size")),
                     quantization=details.get("quantization_level"), context_length=context,
                     source="/api/show")


def from_tgi_info(data: Any) -> ModelInfo | None:
    if not isinstance(data, dict):
        return None
    return ModelInfo(served_model=data.get("model_id"),
                     context_length=_int(data.get("max_total_tokens"))
                     or _int(data.get("max_input_length")),
                     quantization=data.get("quantize") or data.get("model_dtype"),
                     source="/info")


# How each provider describes its model: method, path, the body's key for the model name
# (None: no body), and what reads the answer.
INFO_ROUTES: dict[str, tuple[str, str, str | None, Callable[[Any, str], ModelInfo | None]]] = {
    "openai": ("GET", "/models", None, from_openai_models),
    "ollama": ("POST", "/api/show", "model", from_ollama_show),
    "tgi": ("GET", "/info", None, lambda data, _model: from_tgi_info(data)),
}
INFO_LIMIT = 1 << 20  # bytes of a model description


async def model_info(endpoint: EndpointConfig) -> ModelInfo:
    """Whatever the server tells about its model; nothing when it tells nothing. Asked as a
    probe asks: the endpoint's TLS settings and the provider's own auth headers."""
    route = INFO_ROUTES.get(endpoint.provider_name)
    found = None
    if route is not None:
        method, path, key, read = route
        spec = get_provider(endpoint).request(endpoint, endpoint.prompts[0], endpoint.api_key())
        headers = {**endpoint.extra_headers(), **spec.headers, "Accept-Encoding": "identity"}
        body = {key: endpoint.model} if key else None
        try:
            async with make_client(endpoint, 1) as client, asyncio.timeout(5.0), \
                    client.stream(method, endpoint.url + path, headers=headers,
                                  json=body) as response:
                if response.status_code == 200:
                    found = read(json.loads(await read_body(response, INFO_LIMIT)),
                                 endpoint.model)
        except (httpx.HTTPError, TooLarge, TimeoutError, ValueError, RecursionError) as exc:
            log.debug("no model information from %s: %s", endpoint.name, type(exc).__name__)
    return complete(found or ModelInfo(), endpoint.model)


# A model's size and quantisation as names carry them: "Llama-3.1-8B-Instruct",
# "qwen2.5:1.5b", "SmolLM2-135M-Instruct.Q4_1.gguf", "...-AWQ".
_NAME_SIZE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)([MBT])(?![a-z])", re.IGNORECASE)
_NAME_QUANT = re.compile(r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]+)*|F16|BF16|F32|FP8|AWQ|GPTQ|"
                         r"INT[48])(?![A-Za-z0-9])", re.IGNORECASE)


def from_name(name: str | None) -> ModelInfo:
    """What the model's own name says, for servers that say nothing more (llama-cpp-python
    lists only a file path): a guess, marked as such by its source."""
    base = (name or "").rsplit("/", 1)[-1]
    size, quant = _NAME_SIZE.search(base), _NAME_QUANT.search(base)
    return ModelInfo(parameters=parameters_from(size.group(1) + size.group(2)) if size else None,
                     quantization=quant.group(1).upper() if quant else None,
                     source="model name" if size or quant else None)


def complete(info: ModelInfo, name: str | None) -> ModelInfo:
    """``info`` with what the name says where the server said nothing."""
    guess = from_name(info.served_model or name)
    if info.parameters is None and guess.parameters is not None:
        info.parameters = guess.parameters
        info.source = f"{info.source} + model name" if info.source else "model name"
    if info.quantization is None:
        info.quantization = guess.quantization
    return info


def first_served(names: Iterable[str | None]) -> str | None:
    return next((n for n in names if n), None)
