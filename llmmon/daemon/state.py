"""What the runtime keeps per endpoint and per sampler between their runs."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from llmmon.config import EndpointConfig
from llmmon.daemon.history import History
from llmmon.probe.cost import DailySpend
from llmmon.probe.modelinfo import ModelInfo
from llmmon.probe.models import ListedModels
from llmmon.probe.result import ProbeResult
from llmmon.probe.slo import SLOState
from llmmon.samplers.base import Sampler


@dataclass
class EndpointState:
    config: EndpointConfig
    client: httpx.AsyncClient
    spend: DailySpend
    runs: int = 0
    last: ProbeResult | None = None
    task: asyncio.Task[Any] | None = None
    not_before: float = 0.0  # monotonic time before which the server asked not to be probed
    history: History = field(default_factory=lambda: History(0))
    listed: ListedModels = field(default_factory=ListedModels)  # the server's model list
    slo: SLOState = field(default_factory=lambda: SLOState(time.monotonic(), 0.0))
    model: ModelInfo | None = None  # what the server last said of its model

    @property
    def labels(self) -> tuple[str, str, str]:
        return self.config.identity()[0]

    def skip_reason(self) -> str | None:
        if self.spend.exhausted():
            return "budget"
        if time.monotonic() < self.not_before:
            return "retry_after"
        return None


@dataclass
class SamplerState:
    sampler: Sampler
    interval: float
    busy: asyncio.Future[Any] | None = None  # the call in its worker thread
