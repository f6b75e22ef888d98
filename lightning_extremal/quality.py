"""How well masks find the object, for images with ground truth: region IoU and pointing game.

Scores used by the CLI job (``quality/iou``, ``quality/pointing`` in ``summary.json`` and the
logger) and as the metric of the shipped sweeps. Pure tensor functions, plus the loaders of the
ground truth of the demo images and of a folder of mask files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

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
    from .perturbation import gaussian_blur

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


# --- ground truth -----------------------------------------------------------------------------


def _fit(mask: torch.Tensor, size: int | None, crop: bool) -> torch.Tensor:
    """Resize an H×W bool mask the way :func:`lightning_extremal.images.resize_image` resizes."""
    from .images import resize_image

    return resize_image(mask.float().unsqueeze(0), size, crop)[0] > 0.5


def load_ground_truth(
    source: str, ground_truth: str | None, ids: Sequence[str], size: int | None, crop: bool
) -> list[list[torch.Tensor] | None]:
    """Per image, its object masks (each H×W bool, at the loaded image's size) or None.

    ``ground_truth`` is a folder of ``<image id>.png`` files (nonzero = object); without it,
    ``source == "demo"`` uses the demo images' exact object masks (one per label, in label
    order). Images without a mask file get None.
    """
    if ground_truth:
        from PIL import Image

        folder = Path(ground_truth)
        if not folder.is_dir():
            raise ValueError(
                f"data.ground_truth must be a folder of <image id>.png masks; got {ground_truth!r}"
            )
        out: list[list[torch.Tensor] | None] = []
        for image_id in ids:
            path = folder / f"{image_id}.png"
            if not path.is_file():
                out.append(None)
                continue
            with Image.open(path) as png:
                pixels = torch.frombuffer(bytearray(png.convert("L").tobytes()), dtype=torch.uint8)
                mask = pixels.view(png.height, png.width) > 0
            out.append([_fit(mask, size, crop)])
        return out
    if source == "demo":
        from .demo import demo_ground_truth

        return [[_fit(m, size, crop) for m in masks] for masks in demo_ground_truth()]
    return [None] * len(ids)


def pair_truth(
    objects: list[torch.Tensor] | None, labels: Sequence[int] | None, target: int
) -> torch.Tensor | None:
    """The ground truth of one (image, target) pair: the object of that class when the image's
    labels name it, else the union of the image's objects (e.g. a wrong top-1 class)."""
    if not objects:
        return None
    if labels is not None and target in labels and len(labels) == len(objects):
        return objects[list(labels).index(target)]
    return torch.stack(objects).any(0)
