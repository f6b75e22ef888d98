"""How much does one default mask depend on float rounding? (issue #27)

For each photo of the real bed (``data=photos`` under EfficientNet-Lite0), the default
extremal perturbation at each area is run twice in one process (bitwise equal?) and once on
the photo moved by 1e-6 (Gaussian noise, far below 8-bit quantisation): the masks' IoU (at
0.5) and mean absolute difference, and the common ruler's hard logit of each
(``real_photos.Ruler``). Compare the spread with the gaps between methods in RESULTS.

  python benchmarks/ep_sensitivity.py --threads 2 --out /tmp/sensitivity.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from real_photos import Ruler, load_bed

from lightning_extremal import extremal_perturbation

#: Size of the move: far below one step of an 8-bit image (1/255).
MOVE = 1e-6


def default_masks(model, image: torch.Tensor, target: int, areas: list[float]) -> torch.Tensor:
    result = extremal_perturbation(
        model, image[None], [target], areas, logger="none", progress=False, seed=0
    )
    return result.masks[0]


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a > 0.5, b > 0.5
    return float((a & b).sum() / (a | b).sum().clamp(min=1))


def measure(photos: list[str] | None, areas: list[float]) -> list[dict]:
    model, images, ids, targets, _, _ = load_bed("photos", photos)
    rows = []
    for image, name, target in zip(images, ids, targets, strict=True):
        ruler = Ruler(model, image, target)
        noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(0))
        runs = {
            "a": default_masks(model, image, target, areas),
            "b": default_masks(model, image, target, areas),
            "moved": default_masks(model, image + MOVE * noise, target, areas),
        }
        for k, area in enumerate(areas):
            row = {"image": name, "area": area}
            for label, masks in runs.items():
                row[f"hard_{label}"] = ruler.hard(masks[k][None], area)[1][0]
            row["same_process_equal"] = bool(torch.equal(runs["a"][k], runs["b"][k]))
            row["moved_mask_diff"] = float((runs["a"][k] - runs["moved"][k]).abs().mean())
            row["moved_iou"] = iou(runs["a"][k], runs["moved"][k])
            rows.append(row)
            print(row, flush=True)
    return rows


def summary(rows: list[dict]) -> None:
    equal = sum(r["same_process_equal"] for r in rows)
    print(f"bitwise equal in one process: {equal}/{len(rows)}")
    for area in sorted({r["area"] for r in rows}):
        part = [r for r in rows if r["area"] == area]
        ious = [r["moved_iou"] for r in part]
        change = [abs(r["hard_a"] - r["hard_moved"]) for r in part]
        print(
            f"a={area}: IoU after the move median {statistics.median(ious):.2f} min {min(ious):.2f}; "
            f"mean |Δ hard logit| {statistics.mean(change):.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", nargs="*", default=None)
    parser.add_argument("--areas", nargs="+", type=float, default=[0.05, 0.1, 0.2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = measure(args.photos, args.areas)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    summary(rows)


if __name__ == "__main__":
    main()
