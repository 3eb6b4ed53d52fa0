"""The arguments of ``llmmon bench`` and ``llmmon compare``, apart from the commands
(``benchcli.py``): every ``llmmon`` invocation builds its parser, and only these two need the
benchmark modules (0.9 MiB of a daemon that never benchmarks)."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_METRICS = ("ttft_p50", "ttft_p95", "itl_p50", "itl_p95", "tpot_p50", "e2e_p50",
                   "e2e_p95")


def add_workload_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", action="append", default=[],
                   help="a configured endpoint (compare: two, the baseline first)")
    load = p.add_argument_group("load")
    load.add_argument("--concurrency", help="concurrency levels, e.g. 1,2,4,8 (default 1,2,4,8;"
                      " compare: one level, default 4)")
    load.add_argument("--rate", help="request rates per second instead, e.g. 1,2,5")
    load.add_argument("--arrival", choices=("constant", "poisson"), default="constant",
                      help="how --rate requests arrive (default constant)")
    load.add_argument("--requests", type=int, default=32,
                      help="requests per step (compare: per endpoint; default 32)")
    load.add_argument("--duration", help="and at most this long per step, e.g. 30s")
    load.add_argument("--warmup", type=int, default=2, help="requests sent first and not "
                      "counted (default 2)")
    prompts = p.add_argument_group("prompts")
    prompts.add_argument("--dataset", type=Path, help="a JSONL (prompt, max_tokens, expect) or "
                         "CSV (prompt column) file; else synthetic prompts, or the endpoint's "
                         "own prompts with --config-prompts")
    prompts.add_argument("--config-prompts", action="store_true",
                         help="the endpoint's configured prompts (their checks count)")
    prompts.add_argument("--input-tokens", type=int, default=256,
                         help="synthetic prompts: about this many tokens (default 256)")
    prompts.add_argument("--output-tokens", type=int, default=64,
                         help="tokens to ask for (default 64)")
    prompts.add_argument("--ignore-eos", action="store_true",
                         help="ask the server to generate all --output-tokens (vLLM's and "
                         "llama.cpp's ignore_eos); what it returned is reported either way")
    p.add_argument("--seed", type=int, default=0, help="for prompts and Poisson arrivals")
    p.add_argument("--out", type=Path, help="directory for the reports (default "
                   "bench-YYYYmmdd-HHMMSS)")
    adhoc = p.add_argument_group("ad hoc, without a config file")
    adhoc.add_argument("--url", help="the endpoint's URL (OpenAI-style: ending at /v1)")
    adhoc.add_argument("--model", help="the model to ask for")
    adhoc.add_argument("--provider", default="openai", help="its API (default openai)")
    adhoc.add_argument("--api-key-env", help="environment variable holding the API key")
    adhoc.add_argument("--timeout", default="60s", help="per request (default 60s)")
    adhoc.set_defaults(no_stream=False)


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    add_workload_arguments(p)
    p.add_argument("--server-metrics", help="the model server's /metrics URL (vLLM, llama.cpp "
                   "--metrics, TGI, SGLang), sampled during each step")
    p.add_argument("--goodput-target", type=float, default=0.9,
                   help="the knee is the highest load with at least this goodput (default 0.9)")
    p.add_argument("--format", default="json,csv,md,html", help="reports to write")


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    add_workload_arguments(p)
    p.add_argument("--baseline", nargs=2, type=Path, metavar=("OLD.json", "NEW.json"),
                   help="compare two saved bench runs instead of running anything")
    p.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                   help=f"metrics to compare (default {','.join(DEFAULT_METRICS)})")
    p.add_argument("--fail-on", action="append", default=[],
                   help="exit 1 when the second is worse by more than this: ttft_p95:+10%%, "
                   "itl_p50:+5ms, throughput:-5%%, accuracy:-2pt, error_ratio:+1pt (latency "
                   "thresholds also need the confidence interval to exclude no change)")
    p.add_argument("--confidence", type=float, default=0.95,
                   help="of the bootstrap intervals (default 0.95)")
