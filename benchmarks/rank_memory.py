"""Peak resident memory per rank of one chunk explained by W = 1 and W = 2 processes.

Each rank decodes, perturbs and scores only its own block of a chunk's images, so the chunk's
memory per rank should fall as 1/W. This runs the same chunk (synthetic images, the bundled
demo classifier) three ways and prints each process's peak RSS and its growth over the RSS
after imports (the job's own memory):

- W=1: one process;
- W=2 ddp: ``torchrun --standalone --nproc-per-node 2`` (gloo on CPU), each rank its block;
- W=2 ddp_spawn: every rank holds every image (the module is pickled from one process) —
  how every DDP run worked before blocks.

    python benchmarks/rank_memory.py [--images 16] [--size 224] [--steps 10]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024


def worker(args: list[str], report: Path) -> None:
    """Run the CLI in this process and write ``rank baseline peak`` (MB) to ``report``."""
    import lightning  # noqa: F401  (the imports every rank pays, before the job)
    import torch  # noqa: F401

    from lightning_extremal.cli import main

    baseline = rss_mb()
    code = main(args)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, children)
    rank = os.environ.get("RANK", "0")
    with report.open("a") as handle:
        handle.write(f"{rank} {baseline:.0f} {peak:.0f} {code}\n")


def job(out: Path, n: int, size: int, steps: int) -> list[str]:
    return [
        "run",
        "data=synthetic",
        f"data.num_images={n}",
        f"data.size={size}",
        f"data.batch_size={n}",
        f"max_iter={steps}",
        "areas=[0.1]",
        "logger=none",
        "logger.mask_every_n_steps=0",
        "logger.final_table=false",
        "trainer.progress=false",
        "trainer.compile=false",
        "trainer.memory_check=false",
        f"output_dir={out}",
    ]


def measure(mode: str, n: int, size: int, steps: int, folder: Path) -> list[tuple]:
    report = folder / f"{mode}.txt"
    args = job(folder / mode, n, size, steps)
    me = [str(Path(__file__).resolve()), "--worker", str(report), "--"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    if mode == "W=1":
        command = [sys.executable, *me, *args]
    elif mode == "W=2 ddp":
        torchrun = Path(sys.executable).with_name("torchrun")
        command = [str(torchrun), "--standalone", "--nproc-per-node=2", *me, *args]
        command += ["trainer.devices=2", "trainer.strategy=ddp", "trainer.accelerator=cpu"]
    else:
        command = [sys.executable, *me, *args]
        command += ["trainer.devices=2", "trainer.strategy=ddp_spawn", "trainer.accelerator=cpu"]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-3000:]}")
    rows = [line.split() for line in report.read_text().splitlines()]
    return [(mode, int(r), float(b), float(p)) for r, b, p, _ in sorted(rows)]


def main() -> None:
    if "--worker" in sys.argv:
        at = sys.argv.index("--worker")
        worker(sys.argv[at + 3 :], Path(sys.argv[at + 1]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=10)
    a = parser.parse_args()
    pyramid = a.images * 8 * 3 * a.size * a.size * 4 / 2**20
    print(f"one chunk: {a.images} images at {a.size} px, {a.steps} steps, demo classifier; ")
    print(f"its pyramids (8 levels, fp32): {pyramid:.0f} MB\n")
    print("| run | rank | RSS after imports (MB) | peak RSS (MB) | job's own (MB) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("W=1", "W=2 ddp", "W=2 ddp_spawn"):
            for run, rank, base, peak in measure(mode, a.images, a.size, a.steps, Path(tmp)):
                shown = "max of 2 children" if mode.endswith("spawn") else rank
                print(f"| {run} | {shown} | {base:.0f} | {peak:.0f} | {peak - base:.0f} |")


if __name__ == "__main__":
    main()
