"""CPU time per tick of each sampler (targets: host ≤ 0.5 ms, process ≤ 0.2 ms per target,
NVML ≤ 1 ms per GPU).

Without a GPU here, the GPU row runs the sampler against the test suite's fake NVML with
eight GPUs: it measures llmmon's own work around NVML, not the driver's.

    python benchmarks/sampler_cost.py [--ticks 200]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmmon.samplers.gpu import GPUSampler
from llmmon.samplers.host import HostSampler
from llmmon.samplers.process import ProcessSampler, ProcessTarget
from llmmon.sim.nvml import FakeGPU, FakeNVML


def cost(sampler: Any, ticks: int) -> tuple[float, float]:
    """(CPU ms per tick, wall ms per tick), after one warm-up tick."""
    sampler.sample()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(ticks):
        sampler.sample()
    return ((time.process_time() - cpu) / ticks * 1000,
            (time.perf_counter() - wall) / ticks * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ticks", type=int, default=200)
    args = parser.parse_args()
    children = [subprocess.Popen([sys.executable, "-c", f"import time; 'target{i}'; "
                                  "time.sleep(600)"]) for i in range(4)]
    try:
        targets = [ProcessTarget(name=f"t{i}", cmdline=f"'target{i}'") for i in range(4)]
        fake = FakeNVML([FakeGPU(uuid=f"GPU-{i}", processes=[(100 + i, 1 << 30)])
                         for i in range(8)])
        rows = [
            ("host", HostSampler(), 1),
            ("process, 4 targets", ProcessSampler(targets), 4),
            ("gpu, 8 fake GPUs", GPUSampler(nvml=fake.module), 8),
        ]
        print(f"{'sampler':<22} {'CPU ms/tick':>12} {'wall ms/tick':>13} {'CPU ms/unit':>12}")
        for name, sampler, units in rows:
            cpu, wall = cost(sampler, args.ticks)
            print(f"{name:<22} {cpu:>12.3f} {wall:>13.3f} {cpu / units:>12.3f}")
    finally:
        for child in children:
            child.kill()
            child.wait()


if __name__ == "__main__":
    main()
