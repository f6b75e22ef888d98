"""The planted box: does each optimiser find a box the model is built to look at?

``tests.helpers.BoxModel`` scores class 0 by the mean brightness inside a known 24-px box of a
96-px image (step 4, σ 8, max blur 10, area = the box's 0.0625). Prints, per optimiser and
game, the IoU of the mask's top-|box| pixels with the box, the reward and the achieved area.
Run from the repository root with PYTHONPATH=. (it imports ``tests.helpers``).

  PYTHONPATH=. python benchmarks/planted_box.py
"""

from __future__ import annotations

import warnings

import torch

from lightning_extremal import extremal_perturbation
from tests.helpers import BoxModel, box_scene

SIZE, BOX = 96, (20, 36, 24, 24)
COMMON = dict(progress=False, step=4, sigma=8.0, max_blur=10.0, compile=False)
REFERENCE = dict(optimizer="sgd", lr=0.01, lambda0=300.0, lambda_final=None)
RUNS = [
    ("reference SGD, 300", "delete", "blur", {**REFERENCE, "max_iter": 300}),
    ("reference SGD, 100", "delete", "blur", {**REFERENCE, "max_iter": 100}),
    ("Adam λ₀ 300, 300", "delete", "blur", {"lambda0": 300.0, "max_iter": 300}),
    ("Adam λ₀ 300, 300", "preserve", "blur", {"lambda0": 300.0, "max_iter": 300}),
    ("Adam λ₀ 300, 300", "preserve", "fade", {"lambda0": 300.0, "max_iter": 300}),
    ("Adam λ₀ 30, 300", "delete", "blur", {"max_iter": 300}),
    ("Adam λ₀ 30, 30", "delete", "blur", {"max_iter": 30}),
    ("Adam λ₀ 30, 30", "preserve", "fade", {"max_iter": 30}),
    ("Adam λ₀ 3, 300", "delete", "blur", {"lambda0": 3.0, "max_iter": 300}),
    ("Adam λ₀ 3, 300", "preserve", "blur", {"lambda0": 3.0, "max_iter": 300}),
    ("Adam λ₀ 3, 300", "preserve", "fade", {"lambda0": 3.0, "max_iter": 300}),
]


def box_iou(mask: torch.Tensor) -> float:
    top, left, height, width = BOX
    truth = torch.zeros(mask.shape, dtype=torch.bool)
    truth[top : top + height, left : left + width] = True
    chosen = torch.zeros(mask.numel(), dtype=torch.bool)
    chosen[mask.flatten().topk(int(truth.sum())).indices] = True
    chosen = chosen.view(mask.shape)
    return ((chosen & truth).sum() / (chosen | truth).sum()).item()


def main() -> None:
    warnings.filterwarnings("ignore")
    model, image = BoxModel(SIZE, BOX), box_scene(SIZE, BOX)
    area = BOX[2] * BOX[3] / SIZE**2
    print("| optimiser, steps | game | perturbation | IoU with the box | reward | area |")
    print("|---|---|---|---|---|---|")
    for name, variant, perturbation, options in RUNS:
        result = extremal_perturbation(
            model, image, 0, [area], variant=variant, perturbation=perturbation,
            **COMMON, **options,
        )  # fmt: skip
        print(
            f"| {name} | {variant} | {perturbation} | {box_iou(result.masks[0, 0]):.2f} | "
            f"{result.rewards.item():.2f} | {result.achieved_areas.item():.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
