"""bf16-mixed vs fp32: how much the masks agree when only the classifier runs in bf16.

Explains synthetic images with the bundled demo classifier (or a torchvision model with
random weights) twice — ``precision=32-true`` and ``precision=bf16-mixed`` — from the same
seed, and prints per area the IoU of the two masks' top-area regions (the ``a·H·W`` highest
pixels of each), the mean absolute mask difference, and the wall time of each run.

  python benchmarks/precision.py [--images 16] [--max-iter 800] [--model demo|resnet18|…]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
import torchvision

from lightning_extremal import extremal_perturbation
from lightning_extremal.data.demo import load_demo_classifier
from lightning_extremal.data.synthetic import render_sample
from lightning_extremal.ops.pointing import region_iou, top_area_region


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--max-iter", type=int, default=800)
    parser.add_argument("--areas", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.model == "demo":
        model, size = load_demo_classifier(), 128
    else:
        model, size = torchvision.models.get_model(args.model).eval(), 224
    samples = [render_sample(i, seed=2000, size=size) for i in range(args.images)]
    images = torch.stack([s.image for s in samples])
    targets = [s.labels[0] for s in samples]
    results, seconds = {}, {}
    for precision in ("32-true", "bf16-mixed"):
        start = time.perf_counter()
        results[precision] = extremal_perturbation(
            model.to(args.device),
            images.to(args.device),
            targets,
            args.areas,
            max_iter=args.max_iter,
            precision=precision,
            progress=False,
            accelerator="gpu" if args.device == "cuda" else "cpu",
        ).masks
        seconds[precision] = time.perf_counter() - start
    fp32, bf16 = results["32-true"], results["bf16-mixed"]
    print(
        f"# {args.model}, {args.images} synthetic images at {size} px, {args.max_iter} steps, "
        f"{torch.get_num_threads()} threads, device {args.device}; "
        f"fp32 {seconds['32-true']:.0f} s, bf16-mixed {seconds['bf16-mixed']:.0f} s"
    )
    print("| area | mean IoU of top-area regions | min IoU | mean abs mask difference |")
    print("|---|---|---|---|")
    for k, area in enumerate(args.areas):
        ious = [
            region_iou(top_area_region(fp32[i, k], area), top_area_region(bf16[i, k], area))
            for i in range(args.images)
        ]
        diff = (fp32[:, k] - bf16[:, k]).abs().mean().item()
        print(f"| {area:g} | {sum(ious) / len(ious):.3f} | {min(ious):.3f} | {diff:.4f} |")


if __name__ == "__main__":
    main()
