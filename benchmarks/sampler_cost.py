"""CPU time per tick of each sampler (targets: host ≤ 0.5 ms, process ≤ 0.2 ms per target,
NVML ≤ 1 ms per GPU).

Without a GPU here, the GPU rows run the sampler against the test suite's fake NVML with
eight GPUs (without and with GPM): they measure llmmon's own work around NVML, not the
driver's. On a machine with NVIDIA GPUs, ``--real`` adds a row for them and prints what each
NVML function cost per call there.

    python benchmarks/sampler_cost.py [--ticks 200] [--real]
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
    parser.add_argument("--real", action="store_true", help="also the machine's own GPUs")
    args = parser.parse_args()
    children = [subprocess.Popen([sys.executable, "-c", f"import time; 'target{i}'; "
                                  "time.sleep(600)"]) for i in range(4)]
    try:
        targets = [ProcessTarget(name=f"t{i}", cmdline=f"'target{i}'") for i in range(4)]
        fake = FakeNVML([FakeGPU(uuid=f"GPU-{i}", processes=[(100 + i, 1 << 30)])
                         for i in range(8)])
        hopper = FakeNVML([FakeGPU(uuid=f"GPU-{i}", processes=[(100 + i, 1 << 30)], gpm=True,
                                   gpm_metrics={1: 50.0, 2: 40.0, 3: 30.0, 5: 20.0})
                           for i in range(8)])
        rows: list[tuple[str, Any, int]] = [
            ("host", HostSampler(), 1),
            ("process, 4 targets", ProcessSampler(targets), 4),
            ("gpu, 8 fake GPUs", GPUSampler(nvml=fake.module), 8),
            ("gpu, 8 fake GPM GPUs", GPUSampler(nvml=hopper.module), 8),
        ]
        if args.real:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            rows.append((f"gpu, {count} real GPUs", GPUSampler(nvml=pynvml), count))
        print(f"{'sampler':<22} {'CPU ms/tick':>12} {'wall ms/tick':>13} {'CPU ms/unit':>12}")
        for name, sampler, units in rows:
            cpu, wall = cost(sampler, args.ticks)
            print(f"{name:<22} {cpu:>12.3f} {wall:>13.3f} {cpu / units:>12.3f}")
        if args.real:
            print("\nreal NVML, wall µs per call:")
            for fn, (calls, seconds) in sorted(rows[-1][1]._nvml.costs.items(),
                                                key=lambda kv: -kv[1][1] / kv[1][0]):
                print(f"  {fn:<45} {seconds / calls * 1e6:>10.1f}  ({calls} calls)")
    finally:
        for child in children:
            child.kill()
            child.wait()


if __name__ == "__main__":
    main()
