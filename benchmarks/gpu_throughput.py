"""Masks per second and the overhead ratio on a GPU (issue #15 item 4): resnet50 at 224 px,
bf16-mixed and fp32, for chunks of 16 … 256 masks.

For each precision and batch size B (masks = images × areas, 4 areas per image) it prints
  - masks/s: B ÷ the time of one optimisation step (the difference of two runs with different
    step counts, so set-up cancels out),
  - overhead: that step time ÷ the classifier's own forward + input-gradient backward on the
    same B images (same precision, channels-last like the product),
  - peak memory (CUDA: max allocated; CPU: not measured),
as a table in benchmarks/RESULTS.md's format. Usage (on a CUDA machine):

  python benchmarks/gpu_throughput.py                       # resnet50, 224 px, 16…256 masks
  python benchmarks/gpu_throughput.py --device cpu --model resnet18 --side 64 --masks 4 8
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import classifier_time, ours_per_iteration  # noqa: E402

AREAS = [0.05, 0.1, 0.2, 0.4]
PRECISIONS = {"fp32": "32-true", "bf16": "bf16-mixed"}


def measure(model, side: int, masks: int, device: str, precision: str, steps: tuple) -> dict:
    """One row: masks/s, overhead ratio and peak memory for ``masks`` masks (4 areas each)."""
    images = torch.rand(max(1, masks // len(AREAS)), 3, side, side, device=device)
    areas = AREAS[: min(len(AREAS), masks)]
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step = ours_per_iteration(model, images, areas, device, precision, *steps)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else float("nan")
    batch = images.repeat_interleave(len(areas), 0)
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")
    with autocast:
        classifier = classifier_time(model, batch, device, channels_last=True)
    count = len(images) * len(areas)
    return {"masks": count, "masks/s": count / step, "overhead": step / classifier, "peak": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--side", type=int, default=224)
    parser.add_argument("--masks", type=int, nargs="*", default=[16, 32, 64, 128, 256])
    parser.add_argument("--precisions", nargs="*", default=list(PRECISIONS))
    parser.add_argument("--steps", type=int, nargs=2, default=[4, 12], help="low high")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device here: run with --device cpu (a smoke run) or on a GPU machine")
    model = torchvision.models.get_model(args.model).eval().to(args.device)
    where = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor()
    print(f"{args.model} at {args.side} px on {where or args.device}, torch {torch.__version__}")
    print("| precision | masks | masks/s | overhead (× classifier fwd+bwd) | peak MiB |")
    print("|---|---|---|---|---|")
    for name in args.precisions:
        for masks in args.masks:
            row = measure(model, args.side, masks, args.device, PRECISIONS[name], args.steps)
            peak = "n/a" if math.isnan(row["peak"]) else f"{row['peak']:.0f}"
            print(
                f"| {name} | {row['masks']} | {row['masks/s']:.1f} | {row['overhead']:.2f} | "
                f"{peak} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
