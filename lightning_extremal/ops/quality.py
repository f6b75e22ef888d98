"""How well masks find the object, for images with ground truth: region IoU and pointing game."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .perturbation import gaussian_blur

#: Pointing-game tolerance, px at a 224 px image (EBP protocol); scaled with the image side.
POINTING_TOLERANCE_224 = 15.0


#: Gaussian σ that smooths the summed masks before the argmax, as a fraction of min(H, W)
#: (the paper's pointing protocol for extremal perturbations).
POINTING_SIGMA_FRACTION = 0.09


def top_area_region(mask: torch.Tensor, area: float) -> torch.Tensor:
    """The ``round(a·|Ω|)`` highest-valued pixels of an H×W mask → H×W bool (at least one).

    Ranking instead of thresholding: a soft mask (the smooth max saturates at ≈ 0.985) still
    gives a region of exactly the target area.
    """
    flat = mask.detach().float().flatten()
    count = min(max(1, round(area * flat.numel())), flat.numel())
    region = torch.zeros_like(flat, dtype=torch.bool)
    region[flat.topk(count).indices] = True
    return region.view(mask.shape)


def region_iou(region: torch.Tensor, truth: torch.Tensor) -> float:
    """``|R ∩ T| / |R ∪ T|`` of two H×W bool masks (0 when both are empty)."""
    union = (region | truth).sum().item()
    return (region & truth).sum().item() / union if union else 0.0


def pointing_tolerance(height: int, width: int) -> float:
    """The pointing game's 15 px at 224 px, scaled to an image whose shorter side is min(H, W)."""
    return POINTING_TOLERANCE_224 * min(height, width) / 224


def pointing_point(masks: torch.Tensor) -> tuple[int, int]:
    """``argmax(g_σ * Σ_k m_k)`` of K×H×W masks, σ = 0.09·min(H, W) → (row, column)."""
    saliency = masks.detach().float().sum(0, keepdim=True).unsqueeze(0)  # 1×1×H×W
    height, width = saliency.shape[-2:]
    saliency = gaussian_blur(saliency, POINTING_SIGMA_FRACTION * min(height, width))
    index = int(saliency.flatten().argmax())
    return index // width, index % width


def pointing_hit(point: tuple[int, int], truth: torch.Tensor, tolerance: float) -> bool:
    """True when a pixel of the H×W bool ``truth`` lies within ``tolerance`` px of ``point``."""
    ys, xs = torch.nonzero(truth, as_tuple=True)
    if len(ys) == 0:
        return False
    distance = ((ys.float() - point[0]) ** 2 + (xs.float() - point[1]) ** 2).sqrt().min()
    return bool(distance <= tolerance)


def mask_quality(
    masks: torch.Tensor, areas: Sequence[float], truths: Sequence[torch.Tensor | None]
) -> dict[str, list]:
    """Per pair: IoU of the largest area's top region with the object, and the pointing hit.

    ``masks`` P×K×H×W, ``areas`` (K,), ``truths`` P H×W bool masks (None: no ground truth →
    NaN IoU, hit None). Returns ``{"iou": [P floats], "pointing_hit": [P bools | None]}``.
    """
    largest = max(range(len(areas)), key=lambda k: areas[k])
    ious: list[float] = []
    hits: list[bool | None] = []
    for pair_masks, truth in zip(masks, truths, strict=True):
        if truth is None:
            ious.append(math.nan)
            hits.append(None)
            continue
        truth = truth.bool()
        ious.append(region_iou(top_area_region(pair_masks[largest], areas[largest]), truth))
        tolerance = pointing_tolerance(*truth.shape)
        hits.append(pointing_hit(pointing_point(pair_masks), truth, tolerance))
    return {"iou": ious, "pointing_hit": hits}


def summarize_quality(
    ious: Sequence[float], hits: Sequence[bool | None]
) -> dict[str, float] | None:
    """Means over the pairs that have ground truth: ``{"iou", "pointing", "pairs"}`` or None."""
    scored = [
        (i, h) for i, h in zip(ious, hits, strict=True) if h is not None and not math.isnan(i)
    ]
    if not scored:
        return None
    return {
        "iou": sum(i for i, _ in scored) / len(scored),
        "pointing": sum(1.0 for _, h in scored if h) / len(scored),
        "pairs": float(len(scored)),
    }
