"""CPU of one probe's fixed work: short streamed probes (2 events) back to back on one kept
connection, against a server in another process (cpu_per_event.py's), after a warm-up.
What a probe costs beyond its events: the request, the head, the hand-back to the pool, the
verdict.

    .venv/bin/python benchmarks/probe_cost.py [--probes 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_start import wait_up
from soak import free_port

from llmmon.config import Prompt
from llmmon.config.settings import Settings
from llmmon.probe.run import run_probe
from llmmon.probe.transport import make_client

SERVER = Path(__file__).resolve().parent / "cpu_per_event.py"


async def main(probes: int) -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, str(SERVER), "--serve", str(port), "--api",
                               "openai", "--events", "2", "--gap", "0"])
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_up(url)
        endpoint = Settings(endpoints=[{"name": "s", "provider": "openai", "url": url,
                                        "model": "m", "timeout": "120s",
                                        "stream_options": False}]).endpoints[0]
        prompt = Prompt(name="p", text="go")
        async with make_client(endpoint, 1) as client:
            for _ in range(50):
                await run_probe(client, endpoint, prompt)
            cpu = time.process_time()
            for _ in range(probes):
                result = await run_probe(client, endpoint, prompt)
                assert result.ok, result.detail
            cpu = time.process_time() - cpu
        print(f"{probes} probes of 2 events on one connection: "
              f"{cpu / probes * 1e6:.0f} µs CPU per probe")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=2000)
    asyncio.run(main(parser.parse_args().probes))
