"""The area constraint by rank statistics: the sorted mask must match a step vector."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def reference_vector(
    num_pixels: int, areas: Sequence[float] | torch.Tensor, num_visible: int | None = None
) -> torch.Tensor:
    """Step vectors ``r_a``: zeros followed by ``|Ω_v| − ⌊(1 − a)·|Ω_v|⌋`` ones, one row per area.

    ``|Ω_v|`` (``num_visible``, default ``num_pixels``) is the visible image: the area is a
    fraction of the image even when the ranked mask also covers a margin around it, so a
    mask that is 1 on ``a·|Ω_v|`` pixels matches ``r_a`` exactly. With no margin this is
    the paper's ``(1 − a)·|Ω|`` zeros then ones. Shapes: ``areas`` (B,) → B×|Ω| float32.
    """
    num_visible = num_pixels if num_visible is None else num_visible
    areas = torch.as_tensor(areas, dtype=torch.float64).view(-1, 1)
    ones = num_visible - torch.floor(num_visible * (1 - areas))
    return (torch.arange(num_pixels, dtype=torch.float64).view(1, -1) >= num_pixels - ones).float()


def area_loss(masks: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``L_area = mean((vecsort(m) − r_a)²)`` per mask: zero iff the mask's sorted values are ``r_a``.

    Shapes: ``masks`` B×…  (flattened per mask, over the visible image), ``reference`` B×|Ω|
    → (B,).
    """
    ranked = masks.flatten(1).sort(dim=1).values
    return (ranked - reference).pow(2).mean(dim=1)


def achieved_area(masks: torch.Tensor) -> torch.Tensor:
    """Fraction of the image the mask keeps, ``mean_u m_u`` per mask (B×… → (B,))."""
    return masks.flatten(1).mean(dim=1)
