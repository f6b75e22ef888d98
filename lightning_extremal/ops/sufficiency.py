"""The measurements of the paper's analyses: the score of an image seen through a mask, the
score normalised by the unperturbed image's, and the smallest area where a curve crosses a level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .perturbation import apply_pyramid
from .rewards import RewardFn, mean_reward


def probability_reward(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``p_b = softmax(y_b)_{t_b}`` over the class dimension (B×C×… → B×…)."""
    probs = logits.float().softmax(dim=1)
    index = targets.view(-1, 1, *([1] * (logits.dim() - 2))).expand(-1, 1, *logits.shape[2:])
    return probs.gather(1, index).squeeze(1)


@torch.no_grad()
def masked_scores(
    model: torch.nn.Module,
    pyramid: torch.Tensor,
    masks: torch.Tensor,
    image_index: torch.Tensor,
    targets: torch.Tensor,
    score: RewardFn,
    batch: int = 64,
) -> torch.Tensor:
    """``Φ(m_b ⊗ x_{n(b)})`` for every mask: the image blended with its perturbation pyramid by
    the mask (1 keeps the image, 0 its most perturbed level), scored for target ``t_b``.

    ``pyramid`` N×L×C×H×W, ``masks`` B×1×H×W in [0, 1], ``image_index`` and ``targets`` (B,)
    → (B,), ``batch`` masks per forward.
    """
    device = pyramid.device
    out = []
    for s in range(0, len(masks), batch):
        part = slice(s, s + batch)
        x = apply_pyramid(pyramid, masks[part].to(device).float(), image_index[part].to(device))
        out.append(mean_reward(score, model(x).float(), targets[part].to(device)).cpu())
    return torch.cat(out) if out else torch.zeros(0)


def normalised(scores: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
    """``Φ(m ⊗ x) / Φ(x)`` per row: ``scores`` P×K over ``full`` (P,). A pair whose full score
    is not positive has no meaningful ratio: its row is NaN."""
    ratio = scores / full.unsqueeze(1)
    return torch.where(full.unsqueeze(1) > 0, ratio, torch.full_like(ratio, float("nan")))


def crossing_area(
    areas: Sequence[float], curve: Sequence[float], level: float, rising: bool, interpolate: bool
) -> float:
    """The smallest area where ``curve`` reaches ``level``: first ≥ ``level`` (``rising``) or
    first ≤ it (falling), scanning the grid ``areas`` upwards.

    ``interpolate``: between the last grid point short of the level and the first reaching it,
    linearly in log-area (the grid is log-spaced); otherwise that grid area. The first grid
    area when it already reaches the level (no extrapolation below the grid); ``inf`` when no
    grid area does; NaN when the curve is NaN (no meaningful normalisation).
    """
    values = torch.as_tensor(list(curve), dtype=torch.float64)
    if values.isnan().all():
        return float("nan")
    reached = values >= level if rising else values <= level
    hits = reached.nonzero().flatten().tolist()
    if not hits:
        return float("inf")
    k = hits[0]
    if k == 0 or not interpolate:
        return float(areas[k])
    lo, hi = float(values[k - 1]), float(values[k])
    t = 1.0 if hi == lo else (level - lo) / (hi - lo)
    t = min(max(t, 0.0), 1.0)
    log_a = torch.tensor([areas[k - 1], areas[k]], dtype=torch.float64).log()
    return float(torch.exp(log_a[0] + t * (log_a[1] - log_a[0])))


def log_areas(low: float, high: float, count: int) -> list[float]:
    """``count`` areas log-spaced from ``low`` to ``high`` (both included), rounded to 4 digits."""
    if count == 1:
        return [low]
    step = (math.log(high) - math.log(low)) / (count - 1)
    return [round(math.exp(math.log(low) + i * step), 4) for i in range(count)]
