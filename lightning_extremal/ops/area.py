"""The area constraint by rank statistics: the sorted mask must match a step vector."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def ones_count(num_visible: int, areas: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """``k_a = |Ω_v| − ⌊(1 − a)·|Ω_v|⌋``: the ones in area ``a``'s step vector, (K,) int64."""
    areas = torch.as_tensor(areas, dtype=torch.float64).view(-1)
    return (num_visible - torch.floor(num_visible * (1 - areas))).long()


def reference_vector(
    num_pixels: int, areas: Sequence[float] | torch.Tensor, num_visible: int | None = None
) -> torch.Tensor:
    """Step vectors ``r_a``: zeros followed by ``k_a`` ones (:func:`ones_count`), one row per area.

    ``|Ω_v|`` (``num_visible``, default ``num_pixels``) is the visible image: the area is a
    fraction of the image even when the ranked mask also covers a margin around it, so a
    mask that is 1 on ``a·|Ω_v|`` pixels matches ``r_a`` exactly. With no margin this is
    the paper's ``(1 − a)·|Ω|`` zeros then ones. Shapes: ``areas`` (B,) → B×|Ω| float32.
    """
    num_visible = num_pixels if num_visible is None else num_visible
    ones = ones_count(num_visible, areas).view(-1, 1)
    return (torch.arange(num_pixels).view(1, -1) >= num_pixels - ones).float()


def area_loss(
    masks: torch.Tensor, ones: torch.Tensor, bounds: tuple[int, int] | None = None
) -> torch.Tensor:
    """``L_area = mean((vecsort(m) − r)²)`` per mask, ``r`` the step vector with ``k`` ones.

    Zero iff the mask's sorted values are ``r``. Computed without a full sort: the top ``k``
    values meet the ones and the rest the zeros, so
    ``L = (Σ_u m_u² − 2·Σ_{top k} m + k) / |Ω|`` — the same value and gradient, from a
    partial sort (top-k, or bottom-(|Ω|−k) when that is shorter).

    Shapes: ``masks`` B×…  (flattened per mask), ``ones`` (B,) counts ``k`` →  (B,).
    ``bounds = (k_min, k_max)`` (Python ints bracketing every ``k``; default: read from
    ``ones``) saves a device sync per call.
    """
    flat = masks.flatten(1)
    n = flat.shape[1]
    ones = ones.to(flat.device)
    kmin, kmax = (int(ones.min()), int(ones.max())) if bounds is None else bounds
    kmin, kmax = max(kmin, 0), min(kmax, n)
    if kmax <= n - kmin:  # the top k are the shorter list
        values = flat.topk(kmax, dim=1).values
        top = (values * (torch.arange(kmax, device=flat.device) < ones.view(-1, 1))).sum(1)
    else:  # Σ_top k = Σ − Σ_bottom (n − k)
        values = flat.topk(n - kmin, dim=1, largest=False).values
        keep = torch.arange(n - kmin, device=flat.device) < (n - ones).view(-1, 1)
        top = flat.sum(1) - (values * keep).sum(1)
    return (flat.pow(2).sum(1) - 2 * top + ones.to(flat.dtype)) / n


def lambda_schedule(
    lambda0: float, growth: float, final: float | None, steps: int, at: torch.Tensor
) -> torch.Tensor:
    """The area weight at steps ``at`` of a ``steps``-step run, float64.

    ``final`` None: ``λ₀·g^t`` (the reference's open-ended growth). Otherwise λ grows
    geometrically from ``λ₀`` at step 0 to ``final`` at the last step ``steps − 1``.
    """
    at = at.double()
    if final is None:
        return lambda0 * growth**at
    return lambda0 * (final / lambda0) ** (at / max(steps - 1, 1))


def achieved_area(masks: torch.Tensor) -> torch.Tensor:
    """Fraction of the image the mask keeps, ``mean_u m_u`` per mask (B×… → (B,))."""
    return masks.flatten(1).mean(dim=1)
