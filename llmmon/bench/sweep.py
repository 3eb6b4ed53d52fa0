"""A sweep: a warm-up, then one step per load level, each summarised as it ends, the
server watched while it runs; and the comparison of endpoints interleaved request by
request, or of two saved sweeps."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from llmmon import __version__
from llmmon.bench import inference, stats
from llmmon.bench.gpu import GPUWatcher
from llmmon.bench.model import BenchRun, ModelInfo, RequestRecord, StepSummary
from llmmon.bench.runner import Clients, StepPlan, run_step
from llmmon.bench.server import ServerWatcher, first_served, model_info
from llmmon.config import EndpointConfig, Prompt


@dataclass
class Sweep:
    mode: str  # "concurrency" or "rate"
    loads: list[float]
    requests: int | None
    duration: float | None
    warmup: int = 2
    arrival: str = "constant"
    seed: int = 0
    server_metrics: str | None = None
    goodput_target: float = 0.9
    workload: dict[str, Any] = field(default_factory=dict)  # how the prompts were made
    nvml: Any = None  # pynvml or a stand-in (tests); None: import pynvml when a step starts


class Progress:
    """A line per step, redrawn in place on a terminal (running p50 TTFT and tokens/s), or
    written once when the step ends elsewhere (a log, CI)."""

    def __init__(self, total_steps: int, out: TextIO = sys.stderr) -> None:
        self.total, self.out = total_steps, out
        self.tty = out.isatty()
        self.step = 0
        self._last_draw = 0.0

    def start(self, label: str, expected: int | None) -> None:
        self.step += 1
        self.label, self.expected = label, expected
        self.done: list[RequestRecord] = []
        self.began = time.monotonic()
        if not self.tty:
            print(f"step {self.step}/{self.total}: {label} ...", file=self.out, flush=True)

    def record(self, rec: RequestRecord) -> None:
        self.done.append(rec)
        now = time.monotonic()
        if self.tty and now - self._last_draw > 0.2:
            self._last_draw = now
            self._draw(final=False)

    def end(self, summary: StepSummary) -> None:
        if self.tty:
            self._draw(final=True)
        ttft = summary.ttft.p50
        print(f"step {self.step}/{self.total}: {self.label}: {summary.succeeded}/"
              f"{summary.requests} ok, {summary.requests_per_second:.2f} req/s, "
              f"{summary.output_tokens_per_second:.1f} tok/s, TTFT p50 "
              f"{_ms(ttft)}, goodput {summary.goodput:.0%}"
              + (", client saturated" if summary.client_saturated else ""),
              file=self.out, flush=True)

    def _draw(self, final: bool) -> None:
        n = len(self.done)
        width = 24
        share = n / self.expected if self.expected else 0.0
        bar = "#" * int(width * min(1.0, share)) + "." * (width - int(width * min(1.0, share)))
        ttfts = sorted(r.ttft for r in self.done if r.ok and r.ttft is not None)
        p50 = ttfts[len(ttfts) // 2] if ttfts else None
        elapsed = max(1e-9, time.monotonic() - self.began)
        tokens = sum(r.output_tokens or 0 for r in self.done if r.ok)
        line = (f"\r[{self.step}/{self.total}] {self.label} [{bar}] {n}"
                f"{'/' + str(self.expected) if self.expected else ''}  TTFT p50 {_ms(p50)}  "
                f"{tokens / elapsed:.0f} tok/s")
        print(line + ("\n" if final else ""), end="", file=self.out, flush=True)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _label(mode: str, load: float) -> str:
    return f"concurrency {load:g}" if mode == "concurrency" else f"rate {load:g}/s"


def public_endpoint(endpoint: EndpointConfig) -> dict[str, Any]:
    """What a report may say of an endpoint: never a key, a header or a query string."""
    url = endpoint.url.split("?", 1)[0]
    return {"name": endpoint.name, "provider": endpoint.provider_name, "url": url,
            "model": endpoint.model}


def objectives(endpoint: EndpointConfig) -> dict[str, float]:
    """Goodput's thresholds: the endpoint's own TTFT and per-token objectives (slo)."""
    return {"ttft": endpoint.slo.ttft, "tpot": endpoint.slo.itl}


async def warm_up(endpoints: list[EndpointConfig], prompts: list[Prompt], count: int,
                  clients: Clients) -> None:
    if count > 0:
        plan = StepPlan("concurrency", 1, count * len(endpoints), None)
        await run_step(endpoints, prompts, plan, clients)


async def run_sweep(endpoint: EndpointConfig, prompts: list[Prompt], sweep: Sweep,
                    progress: Progress | None = None) -> BenchRun:
    clients = Clients()
    run = BenchRun(endpoint=public_endpoint(endpoint), settings=_settings(sweep),
                   objectives=objectives(endpoint),
                   started=datetime.now(UTC).isoformat(timespec="seconds"),
                   llmmon_version=__version__)
    run.model = await model_info(endpoint)
    try:
        await warm_up([endpoint], prompts, sweep.warmup, clients)
        for i, load in enumerate(sweep.loads):
            plan = StepPlan(sweep.mode, load, sweep.requests, sweep.duration, sweep.arrival,
                            sweep.seed + i)
            summary = await _step([endpoint], prompts, plan, clients, sweep, progress)
            run.steps.append(summary)
        run.model.served_model = run.model.served_model or first_served(
            r.served_model for step in run.steps for r in step.records)
    finally:
        await clients.close()
    run.knee = stats.knee(run.steps, sweep.goodput_target)
    return run


async def _step(endpoints: list[EndpointConfig], prompts: list[Prompt], plan: StepPlan,
                clients: Clients, sweep: Sweep, progress: Progress | None) -> StepSummary:
    if progress:
        progress.start(_label(plan.mode, plan.load), plan.requests)
    hook = progress.record if progress else None
    watcher = ServerWatcher(sweep.server_metrics) if sweep.server_metrics else None
    async with GPUWatcher(sweep.nvml) as gpus:
        if watcher:
            async with watcher:
                result = await run_step(endpoints, prompts, plan, clients, hook)
        else:
            result = await run_step(endpoints, prompts, plan, clients, hook)
    server = watcher.summary() if watcher else None
    goals = objectives(endpoints[0])
    summary = stats.summarize(result.records, mode=plan.mode, load=plan.load,
                              duration=result.duration, ttft_objective=goals["ttft"],
                              tpot_objective=goals["tpot"], cpu_seconds=result.cpu_seconds,
                              server=server)
    summary.records = result.records
    summary.gpu = gpus.summary(summary.output_tokens)
    if progress:
        progress.end(summary)
    return summary


def _settings(sweep: Sweep) -> dict[str, Any]:
    return {"mode": sweep.mode, "loads": sweep.loads, "requests": sweep.requests,
            "duration": sweep.duration, "warmup": sweep.warmup, "arrival": sweep.arrival,
            "seed": sweep.seed, "server_metrics": sweep.server_metrics is not None,
            "goodput_target": sweep.goodput_target, **sweep.workload}


# --- comparing --------------------------------------------------------------------------


async def run_interleaved(endpoints: list[EndpointConfig], prompts: list[Prompt],
                          sweep: Sweep, progress: Progress | None = None
                          ) -> tuple[list[RequestRecord], list[ModelInfo]]:
    """Every endpoint on the same prompts, taking turns request by request, at one load."""
    clients = Clients()
    infos = [await model_info(e) for e in endpoints]
    try:
        await warm_up(endpoints, prompts, sweep.warmup, clients)
        requests = sweep.requests * len(endpoints) if sweep.requests else None
        plan = StepPlan(sweep.mode, sweep.loads[0], requests, sweep.duration, sweep.arrival,
                        sweep.seed)
        if progress:
            progress.start(_label(plan.mode, plan.load) + ", interleaved", requests)
        result = await run_step(endpoints, prompts, plan, clients,
                                progress.record if progress else None)
    finally:
        await clients.close()
    return result.records, infos


def compare_records(names: Sequence[str], a: Sequence[RequestRecord],
                    b: Sequence[RequestRecord], models: Sequence[ModelInfo],
                    metrics: Sequence[str], fail_on: Sequence[str], confidence: float,
                    goals: dict[str, float], seed: int = 0) -> dict[str, Any]:
    """Deltas of ``b`` against ``a`` with bootstrap intervals, accuracy side by side, and
    the verdict of each ``--fail-on`` threshold."""
    thresholds = [inference.parse_fail_on(spec) for spec in fail_on]
    wanted = list(dict.fromkeys([*metrics, *(t.metric for t in thresholds
                                              if t.metric in stats.LATENCY_METRICS)]))
    rows, deltas = [], {}
    for metric in wanted:
        xs, ys = stats.metric_values(a, metric), stats.metric_values(b, metric)
        if not xs or not ys:
            continue
        d = inference.bootstrap_delta(xs, ys, stats.metric_statistic(metric),
                                  confidence=confidence, seed=seed)
        deltas[metric] = d
        rows.append({"metric": metric, "a": d.a, "b": d.b, "delta": d.delta,
                     "relative": d.relative, "low": d.low, "high": d.high,
                     "low_relative": d.low_relative, "high_relative": d.high_relative,
                     "significant": d.excludes_zero()})
    accuracy = _accuracy(a, b)
    sides = [side_summary(a, goals), side_summary(b, goals)]
    verdicts = []
    for threshold in thresholds:
        breached = _breached(threshold, deltas, accuracy, sides)
        verdicts.append({"spec": threshold.describe(), "breached": breached})
    return {"endpoints": list(names), "models": [vars(m) for m in models],
            "confidence": confidence, "requests": [len(a), len(b)], "metrics": rows,
            "accuracy": accuracy, "thresholds": verdicts,
            "verdict": "fail" if any(v["breached"] for v in verdicts) else "pass"}


def _accuracy(a: Sequence[RequestRecord], b: Sequence[RequestRecord]) -> dict[str, Any] | None:
    """Answer checks side by side (failed checks are failed requests: every record with a
    check counts), with Fisher's exact test."""
    checked_a = [bool(r.check_passed) for r in a if r.check_passed is not None]
    checked_b = [bool(r.check_passed) for r in b if r.check_passed is not None]
    if not checked_a or not checked_b:
        return None
    d = inference.proportion_delta(sum(checked_a), len(checked_a), sum(checked_b), len(checked_b))
    return {"rate_a": d.rate_a, "rate_b": d.rate_b, "delta_points": d.delta_points,
            "p_value": d.p_value, "checked": [len(checked_a), len(checked_b)]}


def _breached(threshold: inference.Threshold, deltas: dict[str, inference.Delta],
              accuracy: dict[str, Any] | None, sides: Sequence[StepSummary]) -> bool:
    """Whether the second is worse than the first beyond the threshold. Latency metrics
    also need their interval to exclude no change, and accuracy a significant difference,
    so noise alone never fails a gate."""
    if threshold.metric in deltas:
        return threshold.breached_by(deltas[threshold.metric])
    if threshold.metric == "accuracy":
        if accuracy is None:
            return False
        significant = accuracy["p_value"] < 0.05
        return significant and threshold.breached(accuracy["rate_a"], accuracy["rate_b"])
    a, b = (stats.step_metric(side, threshold.metric) for side in sides)
    return a is not None and b is not None and threshold.breached(a, b)


def side_summary(records: Sequence[RequestRecord], goals: dict[str, float]) -> StepSummary:
    """One endpoint's share of an interleaved run, summarised as a step: its throughput is
    its tokens over the span of its own requests."""
    ends = [r.start + (r.e2e or 0.0) for r in records]
    duration = max(ends) - min(r.start for r in records) if records else 0.0
    return stats.summarize(records, mode="concurrency", load=0, duration=duration,
                           ttft_objective=goals["ttft"], tpot_objective=goals["tpot"],
                           cpu_seconds=0.0)
