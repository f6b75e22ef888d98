"""The one metric module: pointing game (Zhang et al., ECCV 2016) and IoU with the object.

Used by the run job's ``quality/*`` scores (:func:`mask_quality`) and by the benchmark, so
both score a map the same way.

For every (image, ground-truth class) pair a method's saliency map is brought to the original
image's resolution, post-processed the way the reference benchmark (TorchRay's
``attribution_benchmark.py``) does for that method, and its maximum point is taken. The pair is
a hit when a ground-truth pixel of that class lies within the tolerance of the point. The score
is the accuracy of each class, then the mean over the classes (all pairs, and the "Diff"
subset; see :func:`is_difficult_pair`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .perturbation import gaussian_blur

#: Pointing tolerance on VOC and COCO, px at the original image resolution (EBP protocol:
#: 15 px at the 224 px inputs); :func:`scaled_tolerance` scales it for other image sizes.
POINTING_TOLERANCE = 15.0
#: Gaussian σ of the backprop maps (gradient, deconvnet, guided backprop) as a fraction of
#: max(H, W), replicate padding: the reference benchmark's ``smooth=0.02``.
BACKPROP_SMOOTH_FRACTION = 0.02
#: Diff subset: the class's ground-truth box area is below this fraction of the image (EBP §5.1).
DIFF_MAX_AREA_FRACTION = 0.25
#: σ of the summed extremal-perturbation masks, as a fraction of min(H, W) (the paper's protocol).
EP_SMOOTH_FRACTION = 0.09


def scaled_tolerance(height: int, width: int, reference: float = 224.0) -> float:
    """``15 · min(H, W) / 224`` px: the tolerance for images that were not resized to 224.

    The synthetic set is scored at its rendered size S (the demo classifier's input size), so
    its tolerance is the VOC/COCO tolerance scaled by S/224 (≈ 8.57 px at S = 128).
    """
    return POINTING_TOLERANCE * min(height, width) / reference


def resize_saliency(saliency: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of an h×w map to ``size = (H, W)`` (``align_corners=False``) → H×W."""
    saliency = saliency.detach().float()
    if tuple(saliency.shape[-2:]) == tuple(size):
        return saliency
    return F.interpolate(saliency[None, None], size=size, mode="bilinear", align_corners=False)[
        0, 0
    ]


def smooth_saliency(saliency: torch.Tensor, sigma: float, padding: str) -> torch.Tensor:
    """``g_σ * s`` of an H×W map with torchvision's Gaussian kernel (cut at ±4σ).

    ``padding``: ``"zeros"`` (TorchRay's ``imsmooth`` default, used for the extremal
    perturbation masks: borders are pulled down), ``"replicate"`` (used for the backprop maps)
    or ``"reflect"``.
    """
    if sigma <= 0:
        return saliency
    image = saliency[None, None].float()
    if padding == "replicate":
        half = math.ceil(4.0 * sigma)
        padded = F.pad(image, (half, half, half, half), mode="replicate")
        return gaussian_blur(padded, sigma, padding="zeros")[0, 0, half:-half, half:-half]
    return gaussian_blur(image, sigma, padding=padding)[0, 0]


def ep_saliency(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The pointing map of extremal perturbations: ``g_σ * resize(Σ_k m_k)``, σ = 0.09·min(H, W).

    ``masks`` K×h×w (one mask per area), ``size = (H, W)`` of the original image → H×W. The
    Gaussian is zero-padded, as TorchRay's ``extremal_perturbation(..., smooth=0.09)``.
    """
    summed = masks.detach().float().sum(0)
    resized = resize_saliency(summed, size)
    return smooth_saliency(resized, EP_SMOOTH_FRACTION * min(size), padding="zeros")


def backprop_saliency(saliency: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pointing map of gradient-like maps: ``g_σ * resize(s)``, σ = 0.02·max(H, W), replicate."""
    resized = resize_saliency(saliency, size)
    return smooth_saliency(resized, BACKPROP_SMOOTH_FRACTION * max(size), padding="replicate")


#: How each method's map is post-processed before the argmax (TorchRay's benchmark settings).
POINTING_KINDS = ("plain", "backprop", "extremal")


def pointing_map(saliency: torch.Tensor, size: tuple[int, int], kind: str) -> torch.Tensor:
    """An h×w saliency map as the pointing game scores it, at the original size (H, W).

    ``kind``: ``"plain"`` (bilinear resize only: Grad-CAM, MWP, cMWP, RISE, centre),
    ``"backprop"`` (then σ = 0.02·max(H, W): gradient, deconvnet, guided backprop) or
    ``"extremal"`` (the summed masks, then σ = 0.09·min(H, W): extremal perturbations).
    """
    if kind == "plain":
        return resize_saliency(saliency, size)
    if kind == "backprop":
        return backprop_saliency(saliency, size)
    if kind == "extremal":
        return ep_saliency(saliency[None], size)
    raise ValueError(f"kind must be one of {list(POINTING_KINDS)}; got {kind!r}")


def saliency_point(saliency: torch.Tensor) -> tuple[int, int]:
    """``argmax_{(y, x)} s_{yx}`` of an H×W map → (row, column); ties: the first in raster order."""
    width = saliency.shape[-1]
    index = int(saliency.flatten().argmax())
    return index // width, index % width


def pointing_hit(saliency: torch.Tensor, gt_mask: torch.Tensor, tolerance: float) -> bool:
    """Hit when ``min_{q ∈ GT} ‖argmax(s) − q‖₂ ≤ tolerance`` (s and GT both H×W, same grid).

    ``gt_mask`` H×W bool (the class's pixels); an empty mask is a miss.
    """
    if saliency.shape[-2:] != gt_mask.shape[-2:]:
        raise ValueError(
            f"saliency {tuple(saliency.shape)} and ground truth {tuple(gt_mask.shape)} must "
            "have the same H×W; resize the saliency to the ground truth first"
        )
    return hit_at_point(saliency_point(saliency), gt_mask.bool(), tolerance)


def hit_at_point(point: tuple[int, int], truth: torch.Tensor, tolerance: float) -> bool:
    """True when a pixel of the H×W bool ``truth`` lies within ``tolerance`` px of ``point``
    (an empty ``truth`` is a miss)."""
    ys, xs = torch.nonzero(truth, as_tuple=True)
    if len(ys) == 0:
        return False
    distance = ((ys.float() - point[0]) ** 2 + (xs.float() - point[1]) ** 2).sqrt().min()
    return bool(distance <= tolerance)


def top_region(saliency: torch.Tensor, count: int) -> torch.Tensor:
    """The ``count`` highest pixels of an H×W map (ties: lower raster index first) → H×W bool."""
    flat = saliency.detach().float().flatten()
    region = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    region[torch.sort(flat, descending=True, stable=True).indices[:count]] = True
    return region.view(saliency.shape)


def top_area_region(mask: torch.Tensor, area: float) -> torch.Tensor:
    """The ``round(a·|Ω|)`` highest pixels of an H×W mask (at least one) → H×W bool.

    Ranking instead of thresholding: a soft mask (the smooth max saturates at ≈ 0.985) still
    gives a region of exactly the target area. Ties (common on the saturated plateau) go to
    the lower raster index, deterministically (:func:`top_region`).
    """
    return top_region(mask, min(max(1, round(area * mask.numel())), mask.numel()))


def region_iou(region: torch.Tensor, truth: torch.Tensor) -> float:
    """``|R ∩ T| / |R ∪ T|`` of two H×W bool masks (0 when both are empty)."""
    union = (region | truth).sum().item()
    return (region & truth).sum().item() / union if union else 0.0


def object_iou(saliency: torch.Tensor, gt_mask: torch.Tensor) -> float:
    """IoU with the object at the object's own area: the ``|GT|`` highest pixels of the H×W
    map (:func:`top_region`) against the H×W ground truth; 0 for an empty GT."""
    gt = gt_mask.bool()
    count = int(gt.sum())
    return region_iou(top_region(saliency, count), gt) if count else 0.0


def mask_at_area(masks: torch.Tensor, areas: Sequence[float], area: float) -> torch.Tensor:
    """The mask at ``area`` interpolated from masks at ``areas`` (K×H×W → H×W): linear between
    the two areas that bracket it; outside their range, the nearest area's mask."""
    order = sorted(range(len(areas)), key=lambda k: areas[k])
    below = [k for k in order if areas[k] <= area]
    above = [k for k in order if areas[k] >= area]
    low = below[-1] if below else order[0]
    high = above[0] if above else order[-1]
    if areas[high] == areas[low]:
        return masks[low].float()
    t = (area - areas[low]) / (areas[high] - areas[low])
    return (1 - t) * masks[low].float() + t * masks[high].float()


def object_area_iou(masks: torch.Tensor, areas: Sequence[float], gt_mask: torch.Tensor) -> float:
    """IoU with the object of EP's mask at the object's own area: the K masks (K×h×w) resized
    to the ground truth's H×W, interpolated at the object's area fraction
    (:func:`mask_at_area`), its ``|GT|`` highest pixels against the ground truth."""
    size = tuple(gt_mask.shape)
    resized = torch.stack([resize_saliency(m.float(), size) for m in masks])
    area = gt_mask.float().mean().item()
    return object_iou(mask_at_area(resized, areas, area), gt_mask)


def mask_quality(
    masks: torch.Tensor, areas: Sequence[float], truths: Sequence[torch.Tensor | None]
) -> dict[str, list]:
    """Per pair: IoU of the largest area's top region with the object, and the pointing hit.

    The pointing map is the benchmark's (:func:`ep_saliency`: the summed masks, zero-padded
    Gaussian of σ = 0.09·min(H, W)), scored with :func:`scaled_tolerance`. ``masks`` P×K×H×W,
    ``areas`` (K,), ``truths`` P H×W bool masks (None: no ground truth → NaN IoU, hit None).
    Returns ``{"iou": [P floats], "pointing_hit": [P bools | None]}``.
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
        saliency = ep_saliency(pair_masks, tuple(truth.shape))
        hits.append(pointing_hit(saliency, truth, scaled_tolerance(*truth.shape)))
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


def is_difficult_pair(box_area_fraction: float, other_classes: int) -> bool:
    """The "Diff" subset of Zhang et al. (ECCV 2016, §5.1), per (image, class) pair.

    A pair is difficult when (1) the area of the union of that class's ground-truth boxes is
    less than 1/4 of the image, and (2) at least one object of another class is in the image
    (a distractor). ``box_area_fraction`` = |∪ boxes of the class| / (H·W);
    ``other_classes`` = number of other classes present.
    """
    return box_area_fraction < DIFF_MAX_AREA_FRACTION and other_classes >= 1


@dataclass
class PointingScore:
    """Mean per-class accuracy and the per-class numbers behind it (classes without pairs: NaN)."""

    accuracy: float
    class_accuracy: torch.Tensor
    hits: torch.Tensor
    totals: torch.Tensor

    @property
    def pairs(self) -> int:
        return int(self.totals.sum())


def pointing_accuracy(
    hits: Sequence[bool], classes: Sequence[int], num_classes: int | None = None
) -> PointingScore:
    """``acc = (1/|C'|) Σ_{c ∈ C'} hits_c / pairs_c`` over the classes C' that have pairs.

    ``hits[i]`` and ``classes[i]`` describe pair i. Averaging per class first keeps frequent
    classes (VOC's *person*) from dominating; classes with no pair are left out of the mean
    (TorchRay instead counts them as 0 %, which only matters for subsets that miss a class).
    An empty list gives NaN.
    """
    if len(hits) != len(classes):
        raise ValueError(f"got {len(hits)} hits for {len(classes)} classes")
    count = num_classes if num_classes is not None else (max(classes) + 1 if classes else 0)
    hit_counts = torch.zeros(count, dtype=torch.float64)
    totals = torch.zeros(count, dtype=torch.float64)
    for hit, cls in zip(hits, classes, strict=True):
        if not 0 <= cls < count:
            raise ValueError(f"class {cls} is out of range [0, {count})")
        totals[cls] += 1
        hit_counts[cls] += float(bool(hit))
    per_class = hit_counts / totals  # 0/0 → NaN for classes without pairs
    present = totals > 0
    accuracy = float(per_class[present].mean()) if bool(present.any()) else float("nan")
    return PointingScore(accuracy, per_class, hit_counts, totals)
