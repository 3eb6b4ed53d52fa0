"""``llmmon bench`` (a load sweep against one endpoint, with reports) and ``llmmon compare``
(endpoints A/B on the same prompts, interleaved; or two saved sweeps).

Exit codes: 0 done (compare: no threshold breached); 1 every request failed (bench) or a
``--fail-on`` threshold breached (compare); 2 bad configuration or usage."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmmon.bench import inference
from llmmon.bench.model import BenchRun, SchemaError, StepSummary, load_run
from llmmon.bench.sweep import (
    Progress,
    Sweep,
    compare_records,
    objectives,
    run_interleaved,
)
from llmmon.bench.sweep import run_sweep as _run_sweep
from llmmon.bench.workload import dataset, synthetic
from llmmon.config import EndpointConfig, Prompt
from llmmon.config.settings import Settings
from llmmon.config.types import parse_duration
from llmmon.probecli import adhoc_endpoint

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# --- the commands ---------------------------------------------------------------------


async def bench_command(settings: Settings | None, args: argparse.Namespace) -> int:
    try:
        endpoints = _endpoints(settings, args, want=1)
        sweep = _sweep(args, default="1,2,4,8")
        sweep.server_metrics = args.server_metrics
        sweep.goodput_target = args.goodput_target
        prompts = _prompts(args, endpoints[0])
    except ValueError as exc:
        print(f"llmmon bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    endpoint = _with_eos(endpoints[0], args)
    run = await _run_sweep(endpoint, prompts, sweep, Progress(len(sweep.loads)))
    out = _out_dir(args, "bench")
    from llmmon.bench.report import write_reports

    written = write_reports(run, out, formats=[f.strip() for f in args.format.split(",")])
    _print_summary(run)
    for path in written:
        print(f"wrote {path}")
    failed_all = all(step.succeeded == 0 for step in run.steps)
    return EXIT_FAILED if failed_all else EXIT_OK


async def compare_command(settings: Settings | None, args: argparse.Namespace) -> int:
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    try:
        for spec in args.fail_on:
            inference.parse_fail_on(spec)  # every threshold checked before anything runs
        if args.baseline:
            result = _compare_saved(args.baseline, metrics, args.fail_on, args.confidence)
        else:
            endpoints = _endpoints(settings, args, want=2)
            sweep = _sweep(args, default="4")
            prompts = _prompts(args, endpoints[0])
            records, infos = await run_interleaved([_with_eos(e, args) for e in endpoints],
                                                   prompts, sweep, Progress(1))
            a, b = endpoints[0].name, endpoints[1].name
            result = compare_records([a, b], [r for r in records if r.endpoint == a],
                                     [r for r in records if r.endpoint == b], infos, metrics,
                                     args.fail_on, args.confidence, objectives(endpoints[0]),
                                     args.seed)
    except (ValueError, SchemaError, OSError) as exc:
        print(f"llmmon compare: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _write_compare(result, _out_dir(args, "compare"))
    return EXIT_FAILED if result["verdict"] == "fail" else EXIT_OK


# --- pieces -----------------------------------------------------------------------------


def _endpoints(settings: Settings | None, args: argparse.Namespace, want: int
               ) -> list[EndpointConfig]:
    if args.url:
        endpoint = adhoc_endpoint(args)
        if isinstance(endpoint, list):
            raise ValueError("; ".join(endpoint))
        return [endpoint]
    if settings is None or not settings.endpoints:
        raise ValueError("no endpoint: give -c FILE --endpoint NAME, or --url and --model")
    by_name = {e.name: e for e in settings.endpoints}
    names = args.endpoint or ([settings.endpoints[0].name] if want == 1 else [])
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"no endpoint named {', '.join(unknown)} in the config "
                         f"(it has: {', '.join(by_name)})")
    if len(names) != want:
        raise ValueError(f"give {want} endpoint{'s' if want > 1 else ''} with --endpoint"
                         + (" (the baseline first)" if want > 1 else ""))
    return [by_name[n] for n in names]


def _sweep(args: argparse.Namespace, default: str) -> Sweep:
    if args.rate and args.concurrency:
        raise ValueError("give --concurrency or --rate, not both")
    mode, text = ("rate", args.rate) if args.rate else ("concurrency", args.concurrency or default)
    try:
        loads = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--{mode}: a comma-separated list of numbers, not {text!r}") from None
    if not loads or any(x <= 0 or x > 4096 for x in loads):
        raise ValueError(f"--{mode}: each level must be above 0 and at most 4096")
    if mode == "concurrency" and any(x != int(x) for x in loads):
        raise ValueError("--concurrency: whole numbers")
    if args.requests is not None and args.requests < 1:
        raise ValueError("--requests: at least 1")
    duration = parse_duration(args.duration) if args.duration else None
    return Sweep(mode, loads, args.requests, duration, max(0, args.warmup), args.arrival,
                 args.seed, workload=_workload_settings(args))


def _workload_settings(args: argparse.Namespace) -> dict[str, Any]:
    if args.dataset:
        return {"prompts": "dataset", "dataset": args.dataset.name}
    if args.config_prompts:
        return {"prompts": "config"}
    return {"prompts": "synthetic", "input_tokens": args.input_tokens,
            "output_tokens": args.output_tokens, "ignore_eos": args.ignore_eos}


def _prompts(args: argparse.Namespace, endpoint: EndpointConfig) -> list[Prompt]:
    if args.dataset:
        return dataset(args.dataset, args.output_tokens)
    if args.config_prompts:
        return list(endpoint.prompts)
    if args.input_tokens < 1 or args.output_tokens < 1:
        raise ValueError("--input-tokens and --output-tokens: at least 1")
    count = max(64, args.requests or 64)
    return synthetic(count, args.input_tokens, args.output_tokens, args.seed)


def _with_eos(endpoint: EndpointConfig, args: argparse.Namespace) -> EndpointConfig:
    if not args.ignore_eos:
        return endpoint
    return endpoint.model_copy(update={"extra_body": {**endpoint.extra_body,
                                                      "ignore_eos": True}})


def _out_dir(args: argparse.Namespace, kind: str) -> Path:
    out: Path = args.out or Path(f"{kind}-{datetime.now(UTC):%Y%m%d-%H%M%S}")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _print_summary(run: BenchRun) -> None:
    print(f"{run.endpoint['name']} ({run.model.served_model or run.endpoint['model']}):"
          f" knee {_knee(run)}")


def _knee(run: BenchRun) -> str:
    if run.knee is None:
        return "none (no step met the goodput target)"
    unit = "" if run.settings.get("mode") == "concurrency" else " req/s"
    return f"{run.knee:g}{unit}"


def _compare_saved(paths: list[Path], metrics: list[str], fail_on: list[str],
                   confidence: float) -> dict[str, Any]:
    """Two saved sweeps, step by step where their loads match (all steps pooled)."""
    old, new = (load_run(json.loads(p.read_text())) for p in paths)
    loads = {s.load for s in old.steps} & {s.load for s in new.steps}
    if not loads:
        raise ValueError("the two runs share no load level")

    def pooled(run: BenchRun) -> list[Any]:
        return [r for s in run.steps if s.load in loads for r in _records(s)]

    names = [f"{old.endpoint['name']} ({paths[0].name})", f"{new.endpoint['name']} "
             f"({paths[1].name})"]
    result = compare_records(names, pooled(old), pooled(new), [old.model, new.model], metrics,
                             fail_on, confidence, old.objectives)
    result["loads"] = sorted(loads)
    return result


def _records(step: StepSummary) -> list[Any]:
    if not step.records:
        raise ValueError("a saved run without its requests (written by an older llmmon?)")
    return step.records


def _write_compare(result: dict[str, Any], out: Path) -> None:
    from llmmon.bench.report import compare_html, compare_markdown

    (out / "compare.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "compare.md").write_text(compare_markdown(result))
    (out / "compare.html").write_text(compare_html(result))
    print(compare_markdown(result))
    print(f"wrote {out / 'compare.json'}, compare.md, compare.html; verdict: {result['verdict']}")
