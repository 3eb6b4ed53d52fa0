"""``llmmon run --demo``: a simulated endpoint probed in-process, plus simulated GPUs when the
machine has no NVIDIA driver, so that every dashboard panel has something to show."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from llmmon.config import EndpointConfig
from llmmon.config.evals import EvalSuite
from llmmon.config.settings import Settings
from llmmon.daemon.runtime import Runtime
from llmmon.providers.openai import OpenAIConfig
from llmmon.samplers.base import SamplerContext
from llmmon.samplers.nvml import import_nvml
from llmmon.samplers.process import ProcessTarget
from llmmon.sim.nvml import ScriptedNVML
from llmmon.sim.simulator import Simulator

log = logging.getLogger(__name__)


def demo_endpoint(port: int) -> EndpointConfig:
    return OpenAIConfig.model_validate({
        "name": "demo", "provider": "openai", "url": f"http://127.0.0.1:{port}/v1",
        "model": "llmmon-sim", "interval": "5s", "timeout": "10s", "max_tokens": 20,
        "prompts": [
            {"name": "capital", "text": "What is the capital of France?",
             "expect": {"contains": "Paris"}},
            {"name": "arithmetic", "text": "What is 17 + 25?", "expect": {"number": 42}},
            {"name": "count", "text": "Count from 1 to 20, separated by commas."},
        ],
        "pricing": {"input_per_million": 0.15, "output_per_million": 0.60},
        "budget": {"daily_usd": 5.0, "daily_tokens": 2_000_000},
        "load": {"concurrency": 4, "requests": 8, "every": "1m", "timeout": "30s"},
        "cache_probe": {"every": "1m", "prefix_words": 100},
    })


def demo_suite() -> EvalSuite:
    return EvalSuite.model_validate({"name": "sanity", "builtin": "sanity",
                                     "endpoints": ["demo"], "every": "2m", "sample": 8})


def demo_gpus() -> ModuleType | None:
    """None when real GPUs answer (they are used); else two scripted ones."""
    nvml = import_nvml()
    if nvml is not None:
        try:
            nvml.nvmlInit()
            nvml.nvmlShutdown()
            return None
        except nvml.NVMLError:
            pass  # no driver: simulate
    log.info("demo: no NVIDIA driver here, simulating two GPUs")
    return ScriptedNVML(gpus=2, pids=[os.getpid()]).module


def demo_adjuster(port: int) -> Callable[[Settings], Settings]:
    """Adds the demo endpoint and watches llmmon's own process as the demo's "model server"
    (the simulator runs in it), to a loaded config."""
    pidfile = Path(tempfile.gettempdir()) / f"llmmon-demo-{os.getpid()}.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    endpoint, suite = demo_endpoint(port), demo_suite()
    target = ProcessTarget(name="demo-server", pidfile=pidfile)

    def adjust(settings: Settings) -> Settings:
        if not any(e.name == endpoint.name for e in settings.endpoints):
            settings.endpoints.append(endpoint)
            if not any(s.name == suite.name for s in settings.evals):
                settings.evals.append(suite)
        targets = settings.samplers.process.targets
        if not any(t.name == target.name for t in targets):
            targets.append(target)
        return settings

    return adjust


async def run_demo(settings: Settings, load: Callable[[], Settings], lifecycle: bool = False
                   ) -> int:
    """``llmmon run --demo``: the daemon with the simulator running in-process beside it;
    every config it loads, the first and each reload, gets the demo's additions."""
    simulator = Simulator()
    port = await simulator.start("127.0.0.1", 0)
    log.info("demo: simulated endpoint at http://127.0.0.1:%d/v1", port)
    adjust = demo_adjuster(port)
    try:
        runtime = Runtime(adjust(settings), lambda: adjust(load()),
                          samplers=SamplerContext(nvml=demo_gpus()), lifecycle=lifecycle)
        return await runtime.run()
    finally:
        await simulator.close()
