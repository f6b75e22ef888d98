"""How close the demo images' masks get to their areas, and whether they point, per setting.

Runs EP on the 8 bundled demo images (their predicted classes, areas 0.1 and 0.2 as
``preset=quick``) with each setting and prints the worst and mean |achieved − requested|,
pointing hits on the demo ground truth and the mean IoU (``quality/*``'s rules), and the time.
With ``--per-mask`` the signed error of every mask.

  python benchmarks/demo_areas.py [--per-mask]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from lightning_extremal import extremal_perturbation
from lightning_extremal.data.demo import demo_ground_truth, demo_images, load_demo_classifier
from lightning_extremal.ops.pointing import mask_quality

AREAS = [0.1, 0.2]
#: name → options (over the method's defaults).
SETTINGS = {
    "preset=quick (50 steps)": {"max_iter": 50},
    "50 steps, λ_final 20000": {"max_iter": 50, "lambda_final": 20000.0},
    "50 steps, λ_final 50000": {"max_iter": 50, "lambda_final": 50000.0},
    "80 steps": {"max_iter": 80},
    "50 steps, lr 0.03": {"max_iter": 50, "lr": 0.03},
    "50 steps, λ₀ 100": {"max_iter": 50, "lambda0": 100.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-mask", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    model = load_demo_classifier().eval()
    images, ids, labels = demo_images()
    with torch.no_grad():
        top = model(images).argmax(1).tolist()
    truths = [t[lab.index(c)] if c in lab else None
              for t, lab, c in zip(demo_ground_truth(), labels, top, strict=True)]  # fmt: skip
    print("| setting | worst area err | mean area err | hits | mean IoU | s |")
    print("|---|---|---|---|---|---|")
    for name, options in SETTINGS.items():
        start = time.perf_counter()
        result = extremal_perturbation(model, images, top, AREAS, progress=False, **options)
        seconds = time.perf_counter() - start
        error = result.achieved_areas - torch.tensor(AREAS)
        quality = mask_quality(result.masks, AREAS, truths)
        hits = sum(bool(h) for h in quality["pointing_hit"])
        print(
            f"| {name} | {error.abs().max():.3f} | {error.abs().mean():.3f} | {hits}/8 | "
            f"{sum(quality['iou']) / len(ids):.3f} | {seconds:.0f} |",
            flush=True,
        )
        if args.per_mask:
            print(
                "  "
                + ", ".join(
                    f"{i}: {e[0]:+.3f}/{e[1]:+.3f}" for i, e in zip(ids, error, strict=True)
                )
            )


if __name__ == "__main__":
    main()
