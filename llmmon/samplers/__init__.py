"""Samplers read the machine: each is one module whose ``sample()`` returns a complete list of
readings, or ``None`` when it has nothing to report (no GPU is not a failure).

``sample()`` blocks (psutil and NVML are synchronous), so the runtime calls it in a worker
thread, never on the event loop that timestamps probes.
"""

from __future__ import annotations

from typing import Protocol

from llmmon.metrics import Reading


class Sampler(Protocol):
    name: str

    def sample(self) -> list[Reading] | None: ...

    def close(self) -> None: ...
