"""The GPU sampler on a real GPU under load, then idle (for a machine with an NVIDIA GPU and
torch): a bf16 matmul loop in a child process for ``--load`` seconds, then ``--idle``
seconds of nothing, the sampler ticking every second throughout. Prints, for the last tick
of each phase, SM activity and tensor activity (GPM) beside NVML's utilisation, power and
energy, the torch process's memory and SM share, then each NVML function's cost per call
and every field that answered an error.

    python benchmarks/gpu_real.py [--load 60] [--idle 30]
    python benchmarks/gpu_real.py --fake --load 3 --idle 2   # the scripted GPUs, no torch
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmmon.samplers import gpu_families as gf
from llmmon.samplers.gpu import GPUSampler
from llmmon.samplers.gpu_usage import GPUUsageByPid

MATMUL = """
import time, torch
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
end = time.monotonic() + {seconds}
while time.monotonic() < end:
    for _ in range(20):
        a @ b
    torch.cuda.synchronize()
"""
SHOWN = (gf.GPU_SM_ACTIVE, gf.GPU_TENSOR_ACTIVE, gf.GPU_SM_OCCUPANCY, gf.GPU_DRAM_ACTIVE,
         gf.GPU_UTIL, gf.GPU_POWER, gf.GPU_ENERGY, gf.GPU_TEMP, gf.GPU_MEM_USED,
         gf.GPU_PROC_MEM, gf.GPU_PROC_SM, gf.GPU_PCIE_RX, gf.GPU_VIOLATION)


def show(phase: str, readings: list[Any] | None, child: int | None) -> None:
    print(f"--- {phase}")
    for family, labels, value in readings or []:
        if family in SHOWN:
            mark = "  <- torch" if child is not None and str(child) in labels else ""
            print(f"  {family.name}{{{','.join(labels)}}} {value:.4g}{mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--load", type=float, default=60)
    parser.add_argument("--idle", type=float, default=30)
    parser.add_argument("--fake", action="store_true", help="scripted GPUs, no torch")
    args = parser.parse_args()
    if args.fake:
        from llmmon.sim.nvml import ScriptedNVML

        nvml: Any = ScriptedNVML(2, []).module
    else:
        import pynvml as nvml
    sampler = GPUSampler(nvml=nvml, process_usage=GPUUsageByPid())
    child = None if args.fake else subprocess.Popen(
        [sys.executable, "-c", MATMUL.format(seconds=args.load)])
    pid = child.pid if child else None
    try:
        readings = None
        for phase, seconds in (("load", args.load), ("idle", args.idle)):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                readings = sampler.sample()
                time.sleep(1.0)
            show(f"end of {phase}", readings, pid)
    finally:
        if child is not None:
            child.kill()
            child.wait()
    print("--- NVML cost, wall µs per call")
    for fn, (calls, spent) in sorted(sampler._nvml.costs.items(), key=lambda kv: -kv[1][1]):
        print(f"  {fn:<45} {spent / calls * 1e6:>10.1f}  ({calls} calls)")
    print("--- fields that answered an error (GPU, field, error)")
    for index, field, error in sorted(sampler._dropped):
        print(f"  {index} {field} {error}")
    sampler.close()


if __name__ == "__main__":
    main()
