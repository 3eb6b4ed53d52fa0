"""What a benchmark records: each request, each step's summary, the whole run. Plain
dataclasses, so the reports, ``compare`` and the JSON file share one schema
(``SCHEMA``, versioned: a reader refuses a major version it does not know)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The model's description lives with the probes (the daemon publishes it too); a run records it
# as it is, so its JSON keys are ModelInfo's fields. A record from before size_vram_bytes
# loads with it None.
from llmmon.probe.modelinfo import ModelInfo as ModelInfo

SCHEMA = "llmmon.bench/1"
PERCENTILES = ("p50", "p90", "p95", "p99", "mean")


@dataclass
class RequestRecord:
    """One request of a step. Times in seconds; ``start`` from the step's start."""

    start: float
    ok: bool
    error: str | None = None  # a bounded reason (llmmon's ErrorReason)
    ttft: float | None = None
    itl: list[float] = field(default_factory=list)  # every gap between streamed chunks
    tpot: float | None = None
    e2e: float | None = None
    output_tokens: int | None = None
    prompt_tokens: int | None = None
    check_passed: bool | None = None  # the prompt's expectation, where it has one
    events: int = 0  # streamed chunks received (for the client's CPU per event)
    endpoint: str = ""  # which endpoint answered (compare interleaves several)
    served_model: str | None = None  # the model the response named


@dataclass
class Stats:
    """Percentiles of one metric over a step (None when nothing was measured)."""

    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean: float | None = None
    count: int = 0


@dataclass
class ServerSample:
    """The model server's own gauges, sampled during a step (mean and max)."""

    queue_mean: float | None = None
    queue_max: float | None = None
    running_mean: float | None = None
    running_max: float | None = None
    kv_cache_mean: float | None = None  # 0..1
    kv_cache_max: float | None = None
    samples: int = 0


@dataclass
class GPUSample:
    """Every GPU of the machine during a step, from NVML: its energy counter read before and
    after, utilisation and power sampled along."""

    gpus: int
    energy_joules: float  # all GPUs together
    average_power_watts: float
    utilization_mean: float | None  # 0..1, kernel time of the busiest GPU
    joules_per_output_token: float | None = None


@dataclass
class StepSummary:
    mode: str  # "concurrency" or "rate"
    load: float  # the concurrency, or the request rate per second
    requests: int
    succeeded: int
    duration: float  # seconds from the step's first request to its last response
    requests_per_second: float
    output_tokens_per_second: float  # all requests together
    output_tokens_per_second_per_request: Stats
    ttft: Stats
    itl: Stats
    tpot: Stats
    e2e: Stats
    errors: dict[str, int]
    error_ratio: float
    goodput: float  # share of requests meeting the objectives (ok, TTFT and TPOT within)
    achieved_concurrency: float  # time-averaged requests in flight
    accuracy: float | None  # share of checked answers that passed
    output_tokens: int
    client_cpu_seconds: float
    client_cpu_per_event_us: float | None
    client_saturated: bool  # the client's CPU, not the server, may have set the pace
    server: ServerSample | None = None
    gpu: GPUSample | None = None
    prompt_tokens_mean: float | None = None  # what the server reports it read
    output_tokens_mean: float | None = None  # what it actually returned
    # Every request of the step, so a saved run can be compared with confidence intervals
    # (``llmmon compare --baseline``); the reports other than JSON leave them out.
    records: list[RequestRecord] = field(default_factory=list)


@dataclass
class BenchRun:
    endpoint: dict[str, Any]  # name, provider, url, model: never a key or a header value
    settings: dict[str, Any]  # the sweep as asked: mode, loads, requests, duration, warm-up...
    objectives: dict[str, float]  # ttft and tpot thresholds (seconds) goodput is measured by
    started: str  # ISO 8601, UTC
    model: ModelInfo = field(default_factory=ModelInfo)
    steps: list[StepSummary] = field(default_factory=list)
    knee: float | None = None  # the highest load whose goodput met the target
    llmmon_version: str = ""
    schema: str = SCHEMA

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SchemaError(ValueError):
    """A file that is not an llmmon bench record this version can read."""


def load_run(data: Any) -> BenchRun:
    """A ``BenchRun`` from its ``as_dict()`` (a saved JSON report)."""
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("llmmon.bench/"):
        raise SchemaError("not an llmmon bench report (no schema llmmon.bench/N)")
    if data["schema"] != SCHEMA:
        raise SchemaError(f"schema {data['schema']} is not {SCHEMA}, which this llmmon reads")
    try:
        steps = [_step(s) for s in data["steps"]]
        return BenchRun(endpoint=dict(data["endpoint"]), settings=dict(data["settings"]),
                        objectives=dict(data["objectives"]), started=str(data["started"]),
                        model=ModelInfo(**data.get("model") or {}), steps=steps,
                        knee=data.get("knee"), llmmon_version=str(data.get("llmmon_version", "")))
    except (KeyError, TypeError) as exc:
        raise SchemaError(f"a malformed bench report: {exc}") from None


def _step(data: dict[str, Any]) -> StepSummary:
    fields: dict[str, Any] = dict(data)
    for name in ("output_tokens_per_second_per_request", "ttft", "itl", "tpot", "e2e"):
        fields[name] = Stats(**data[name])
    fields["server"] = ServerSample(**data["server"]) if data.get("server") else None
    fields["gpu"] = GPUSample(**data["gpu"]) if data.get("gpu") else None
    fields["records"] = [RequestRecord(**r) for r in data.get("records", [])]
    return StepSummary(**fields)
