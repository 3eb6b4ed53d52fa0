"""What llmmon's insight probes read from a real llama.cpp server (llama-server, SmolLM2):
model information, cold and warm TTFT of the cache probe, what the default nonce does to the
server's prompt cache, the connection's RTT and the server's own timings.

    scripts/install-llama  # builds llama-server once
    .venv/bin/python benchmarks/insight_real.py [--pairs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import time
from pathlib import Path

import httpx

from llmmon.config import Prompt
from llmmon.config.endpoints import CacheProbeConfig
from llmmon.config.settings import Settings
from llmmon.probe.cache import run_cache_probe
from llmmon.probe.modelinfo import fetch_model_info
from llmmon.probe.run import run_probe
from llmmon.probe.transport import make_client

LLAMA = Path.home() / ".cache/llmmon-test/llama"
MODEL = LLAMA / "SmolLM2-135M-Instruct.Q4_1.gguf"


def start() -> tuple[subprocess.Popen[bytes], str]:
    log = Path("/tmp/llmmon-insight-llama.log")
    proc = subprocess.Popen([str(LLAMA / "bin/llama-server"), "-m", str(MODEL), "--host",
                             "127.0.0.1", "--port", "0", "-c", "2048", "--parallel", "1"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if found := re.search(r"listening on (http://127\.0\.0\.1:\d+)", log.read_text()):
            base = found.group(1)
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    return proc, base
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("llama-server did not start")


async def main(pairs: int) -> None:
    proc, base = start()
    try:
        endpoint = Settings(endpoints=[{"name": "cpp", "provider": "openai",
                                        "url": base + "/v1", "model": str(MODEL),
                                        "timeout": "60s"}]).endpoints[0]
        async with make_client(endpoint) as client:
            info = await fetch_model_info(client, endpoint)
            print(f"model: parameters={info.parameters} size_bytes={info.size_bytes} "
                  f"context={info.context_length} quantization={info.quantization} "
                  f"source={info.source}")
            cold, warm, cached = [], [], []
            for _ in range(pairs):
                c, w = await run_cache_probe(client, endpoint, CacheProbeConfig())
                if w is None or not c.ttft or not w.ttft:
                    raise SystemExit(f"cache probe failed: {c.detail} / {w and w.detail}")
                cold.append(c.ttft)
                warm.append(w.ttft)
                cached.append((w.cached_tokens or 0, w.prompt_tokens or 0))
            print(f"cache probe ({pairs} pairs, 300 words): cold TTFT median "
                  f"{statistics.median(cold) * 1e3:.1f} ms, warm "
                  f"{statistics.median(warm) * 1e3:.1f} ms, ratio "
                  f"{statistics.median(w / c for w, c in zip(warm, cold, strict=True)):.3f}; "
                  f"warm cached/prompt tokens {cached[0][0]}/{cached[0][1]}")
            prompt = Prompt(name="p", text="Name three colours of the rainbow. " * 8,
                            max_tokens=4)
            for bust in (True, False):
                await run_probe(client, endpoint, prompt, nonce=bust)
                again = await run_probe(client, endpoint, prompt, nonce=bust)
                print(f"same prompt twice, nonce={bust}: second probe cached "
                      f"{again.cached_tokens}/{again.prompt_tokens} tokens, TTFT "
                      f"{(again.ttft or 0) * 1e3:.1f} ms")
            short = Prompt(name="hi", text="Say hi.", max_tokens=2)
            back_to_back = [await run_probe(client, endpoint, short) for _ in range(30)]
            print(f"30 probes back to back on one client: "
                  f"{sum(not r.ok for r in back_to_back)} failed, "
                  f"{sum(r.retried for r in back_to_back)} asked again on a new connection "
                  f"(llama-server closed the kept-alive one as it was reused)")
            rtts, prefill = [], []
            for _ in range(pairs):
                result = await run_probe(client, endpoint, prompt)
                if result.rtt is not None:
                    rtts.append(result.rtt)
                prefill.append(result.server_timing.get("prefill", 0.0))
                last = result
            print(f"RTT median {statistics.median(rtts) * 1e6:.0f} µs over {len(rtts)} probes; "
                  f"last probe: ttft {(last.ttft or 0) * 1e3:.1f} ms, server timing "
                  + ", ".join(f"{k}={v * 1e3:.1f} ms" for k, v in last.server_timing.items()))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=10)
    asyncio.run(main(parser.parse_args().pairs))
