"""How close the memory check's estimate (lightning_extremal/api/memory.py) comes to the real
peak: for each case, a fresh process estimates a chunk, runs it (2 steps, the check off) and
reports the growth of its peak resident memory over what it held before the run.

Usage: python benchmarks/memory_estimate.py [--cases "MODEL SIDE IMAGES AREAS COMPILE" ...]
(MODEL: demo or a torchvision name, random weights; COMPILE: true|false; optional STEP and
SIGMA after COMPILE, else the method's defaults). CPU only.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CASES = [
    "resnet18 224 4 2 false",
    "resnet18 224 4 2 true",
    "resnet18 448 2 2 false",
    "resnet50 224 2 4 false",
    "demo 128 8 4 false",
    "demo 512 2 2 false",
    "demo 1024 1 1 false",
    "demo 2048 1 1 true",
    "demo 2048 1 1 false",
    "demo 512 2 2 false 64 21",
    "demo 512 2 2 false 200 21",
    "demo 512 2 2 false 7 100",
]

CHILD = r"""
import resource, sys, torch, torchvision
from dataclasses import replace
from lightning_extremal import extremal_perturbation
from lightning_extremal.api.memory import estimate_memory
from lightning_extremal.config import MethodConfig
from lightning_extremal.data.demo import load_demo_classifier
name, side, n, k, comp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "true"
step, sigma = (int(sys.argv[6]), float(sys.argv[7])) if len(sys.argv) > 6 else (7, 21.0)
torch.set_num_threads(2)
model = load_demo_classifier() if name == "demo" else torchvision.models.get_model(name, num_classes=10).eval()
x, areas = torch.rand(n, 3, side, side), [0.05 * (i + 1) for i in range(k)]
est = estimate_memory(model, x, n * k, replace(MethodConfig(), areas=areas, max_iter=2, step=step, sigma=sigma), comp)
with torch.no_grad():
    model(x[:1])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
extremal_perturbation(model, x, 0, areas, max_iter=2, progress=False, warm_start="none",
                      compile=comp, memory_check=False, step=step, sigma=sigma)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
print(f"| {name} | {side} | {n * k} | {comp} | {step} | {sigma:g} | {est.total / 2**20:.0f} | {peak / 2**20:.0f} | {est.total / peak:.2f} |")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="*", default=CASES)
    args = parser.parse_args()
    print("| model | side px | masks | compiled | step | σ | estimate MiB | measured MiB | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for case in args.cases:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, *case.split()], capture_output=True, text=True
        )
        print(out.stdout.strip() or f"| {case}: failed: {out.stderr.strip()[-200:]} |", flush=True)


if __name__ == "__main__":
    main()
