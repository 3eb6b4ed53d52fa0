"""``llmmon run --demo``: a simulated endpoint probed in-process, plus simulated GPUs when the
machine has no NVIDIA driver, so that every dashboard panel has something to show."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from llmmon.config import EndpointBase, OpenAIEndpoint, ProcessTarget, Settings
from llmmon.samplers.gpu import import_nvml
from llmmon.simnvml import ScriptedNVML

log = logging.getLogger(__name__)


def demo_endpoint(port: int) -> EndpointBase:
    return OpenAIEndpoint.model_validate({
        "name": "demo", "provider": "openai", "url": f"http://127.0.0.1:{port}/v1",
        "model": "llmmon-sim", "interval": "5s", "timeout": "10s", "max_tokens": 20,
        "prompts": [
            {"name": "capital", "text": "What is the capital of France?",
             "expect": {"contains": "Paris"}},
            {"name": "arithmetic", "text": "What is 17 + 25?", "expect": {"number": 42}},
            {"name": "count", "text": "Count from 1 to 20, separated by commas."},
        ],
        "pricing": {"input_per_million": 0.15, "output_per_million": 0.60},
        "budget": {"daily_usd": 5.0},
        "load": {"concurrency": 4, "requests": 8, "every": "1m", "timeout": "30s"},
    })


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


def demo_adjuster(port: int) -> Callable[[Settings], None]:
    """Adds the demo endpoint and watches llmmon's own process as the demo's "model server"
    (the simulator runs in it), in every config the daemon loads."""
    pidfile = Path(tempfile.gettempdir()) / f"llmmon-demo-{os.getpid()}.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    endpoint = demo_endpoint(port)
    target = ProcessTarget(name="demo-server", pidfile=pidfile)

    def adjust(settings: Settings) -> None:
        if not any(e.name == endpoint.name for e in settings.endpoints):
            settings.endpoints.append(endpoint)  # type: ignore[arg-type]
        if not any(t.name == target.name for t in settings.samplers.process.targets):
            settings.samplers.process.targets.append(target)

    return adjust
