"""``llmmon probe``: probe endpoints now and print what was measured, and why a probe failed."""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from llmmon.config.settings import Settings
from llmmon.probe.result import ProbeResult
from llmmon.probe.run import run_probe

EXIT_OK, EXIT_PROBE_FAILED, EXIT_CONFIG = 0, 1, 2


def add_probe_arguments(probe: argparse.ArgumentParser) -> None:
    probe.add_argument("--endpoint", help="only this endpoint")
    probe.add_argument("--count", type=int, default=1, help="probes per endpoint (default 1)")
    probe.add_argument("--json", action="store_true", help="one JSON object per probe")


async def probe_command(settings: Settings, args: argparse.Namespace) -> int:
    return await _probe(settings, args.endpoint, args.count, args.json)


async def _probe(settings: Settings, only: str | None, count: int, as_json: bool) -> int:
    from llmmon.probe.transport import make_client

    endpoints = [e for e in settings.endpoints if only is None or e.name == only]
    if not endpoints:
        print(f"no endpoint named {only}" if only else "no endpoints configured",
              file=sys.stderr)
        return EXIT_CONFIG
    failed = False
    if not as_json:
        print(f"{'endpoint':<16} {'prompt':<12} {'result':<12} {'TTFT ms':>9} {'ITL p50':>8} "
              f"{'ITL p99':>8} {'E2E ms':>9} {'tok/s':>7} {'tokens':>7} {'check':>6}")
    for endpoint in endpoints:
        async with make_client(endpoint) as client:
            for i in range(max(1, count)):
                prompt = endpoint.prompts[i % len(endpoint.prompts)]
                result = await run_probe(client, endpoint, prompt)
                failed |= not result.ok
                print(json.dumps(_public(result)) if as_json else _row(result), flush=True)
    return EXIT_PROBE_FAILED if failed else EXIT_OK


def _public(result: ProbeResult) -> dict[str, object]:
    out = result.as_dict()
    out.pop("finished_unix")
    return out


def _row(result: ProbeResult) -> str:
    def ms(value: float | None) -> str:
        return f"{value * 1000:.1f}" if value is not None else "-"

    itl = sorted(result.itl)
    p50 = statistics.median(itl) if itl else None
    p99 = itl[min(len(itl) - 1, int(len(itl) * 0.99))] if itl else None
    tps = f"{result.tokens_per_second:.1f}" if result.tokens_per_second else "-"
    check = {True: "pass", False: "fail", None: "-"}[result.check_passed]
    return (f"{result.endpoint:<16} {result.prompt:<12} {result.error or 'ok':<12} "
            f"{ms(result.ttft):>9} {ms(p50):>8} {ms(p99):>8} {ms(result.e2e):>9} {tps:>7} "
            f"{result.output_tokens or '-':>7} {check:>6}")
