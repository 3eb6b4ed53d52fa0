"""``llmmon probe``: probe endpoints now and print what was measured, and why a probe failed.

From a config file, or ad hoc without one: ``llmmon probe --url URL --model M``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pydantic import ValidationError

from llmmon.config import EndpointConfig
from llmmon.config.settings import Settings, describe_errors
from llmmon.probe.models import ListedModels
from llmmon.probe.result import ProbeResult
from llmmon.probe.run import run_probe
from llmmon.providers import PROVIDERS

EXIT_OK, EXIT_PROBE_FAILED, EXIT_CONFIG = 0, 1, 2
ANSWER_SHOWN = 200  # characters of a failed check's answer in the table


def add_probe_arguments(probe: argparse.ArgumentParser) -> None:
    probe.add_argument("--endpoint", help="only this endpoint")
    probe.add_argument("--count", type=int, default=1, help="probes per endpoint (default 1)")
    probe.add_argument("--json", action="store_true", help="one JSON object per probe")
    adhoc = probe.add_argument_group("ad hoc, without a config file")
    adhoc.add_argument("--url", help="the endpoint's URL (OpenAI-style: ending at /v1)")
    adhoc.add_argument("--model", help="the model to ask for")
    adhoc.add_argument("--provider", default="openai", choices=list(PROVIDERS),
                       help="its API (default openai)")
    adhoc.add_argument("--api-key-env", help="environment variable holding the API key")
    adhoc.add_argument("--no-stream", action="store_true", help="ask for a whole response")
    adhoc.add_argument("--timeout", default="30s", help="per probe (default 30s)")


def adhoc_endpoint(args: argparse.Namespace) -> EndpointConfig | list[str]:
    """The endpoint ``--url/--model/--provider`` describe, or the problems with them."""
    if not args.model:
        return ["--model is required with --url"]
    data: dict[str, Any] = {"name": "adhoc", "provider": args.provider, "url": args.url,
                            "model": args.model, "timeout": args.timeout,
                            "stream": not args.no_stream}
    if args.api_key_env:
        data["api_key_env"] = args.api_key_env
    try:
        endpoint: EndpointConfig = Settings(endpoints=[data]).endpoints[0]
    except ValidationError as exc:
        return [p.replace("endpoints[0] (adhoc).", "--").replace("endpoints[0].", "--")
                for p in describe_errors(exc)]
    return endpoint


async def probe_command(settings: Settings | None, args: argparse.Namespace,
                        endpoint: EndpointConfig | None = None) -> int:
    """Probe the configured endpoints (or the ad hoc one) ``--count`` times each."""
    from llmmon.probe.transport import make_client

    if endpoint is not None:
        endpoints = [endpoint]
    else:
        assert settings is not None
        endpoints = [e for e in settings.endpoints if args.endpoint in (None, e.name)]
        if not endpoints:
            _no_endpoint(settings, args.endpoint)
            return EXIT_CONFIG
    table = Table(endpoints) if not args.json else None
    failed = False
    for ep in endpoints:
        results, listed = [], ListedModels()
        async with make_client(ep) as client:
            for i in range(max(1, args.count)):
                prompt = ep.prompts[i % len(ep.prompts)]
                result = await run_probe(client, ep, prompt, listed=listed)
                results.append(result)
                failed |= not result.ok
                print(json.dumps(_public(result)) if table is None else table.row(result),
                      flush=True)
        if table is not None and len(results) > 1:
            print(table.summary(ep.name, results), flush=True)
    return EXIT_PROBE_FAILED if failed else EXIT_OK


def _no_endpoint(settings: Settings, name: str | None) -> None:
    names = [e.name for e in settings.endpoints]
    if not names:
        print("no endpoints configured (or probe one ad hoc: --url URL --model M)",
              file=sys.stderr)
    else:
        print(f"no endpoint named {name}; the configured ones: {', '.join(names)}",
              file=sys.stderr)


def _public(result: ProbeResult) -> dict[str, object]:
    out = result.as_dict()
    out.pop("finished_unix")
    return out


class Table:
    """Rows that fit the names being probed, and what went wrong under a failed row."""

    HEAD = ("result", "TTFT ms", "ITL p50", "ITL p99", "E2E ms", "tok/s", "tokens", "check")
    WIDTHS = (12, 9, 8, 8, 9, 7, 7, 6)

    def __init__(self, endpoints: list[EndpointConfig]) -> None:
        self.name_width = max([8, *(len(e.name) for e in endpoints)])
        self.prompt_width = max([6, *(len(p.name) for e in endpoints for p in e.prompts)])
        print(self._line(("endpoint", "prompt", *self.HEAD)), flush=True)

    def _line(self, cells: tuple[str, ...]) -> str:
        name, prompt, first, *rest = cells
        out = f"{name:<{self.name_width}} {prompt:<{self.prompt_width}} {first:<12}"
        return out + "".join(f" {c:>{w}}" for c, w in zip(rest, self.WIDTHS[1:], strict=True))

    def row(self, result: ProbeResult) -> str:
        itl = sorted(result.itl)
        tps = f"{result.tokens_per_second:.1f}" if result.tokens_per_second else "-"
        check = {True: "pass", False: "fail", None: "-"}[result.check_passed]
        line = self._line((result.endpoint, result.prompt, result.error or "ok",
                           _ms(result.ttft), _ms(_quantile(itl, 0.5)), _ms(_quantile(itl, 0.99)),
                           _ms(result.e2e), tps, str(result.output_tokens or "-"), check))
        return line + "".join(f"\n  {line}" for line in _why(result))

    def summary(self, name: str, results: list[ProbeResult]) -> str:
        """Success ratio and latency percentiles over the successful probes."""
        ok = [r for r in results if r.ok]
        ttft = sorted(r.ttft for r in ok if r.ttft is not None)
        itl = sorted(gap for r in ok for gap in r.itl)
        parts = [f"{name}: {len(ok)}/{len(results)} ok ({len(ok) / len(results):.0%})"]
        for label, values in (("TTFT", ttft), ("ITL", itl)):
            if values:
                parts.append(f"{label} p50 {_ms(_quantile(values, 0.5))} ms, "
                             f"p95 {_ms(_quantile(values, 0.95))} ms")
        return "= " + " · ".join(parts)


def _why(result: ProbeResult) -> list[str]:
    lines = []
    if result.detail:
        lines.append(f"why: {result.detail}")
    if result.hint:
        lines.append(f"hint: {result.hint}")
    if result.check_passed is False:
        answer = result.text[:ANSWER_SHOWN] + ("…" if len(result.text) > ANSWER_SHOWN else "")
        lines.append(f"answer: {json.dumps(answer)}")
    return lines


def _ms(value: float | None) -> str:
    return f"{value * 1000:.1f}" if value is not None else "-"


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]
