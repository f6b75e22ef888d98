"""The terms of feature inversion (Mahendran & Vedaldi, CVPR 2015): activation match,
total-variation and α-norm priors, jitter and the starting images."""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: Standard deviation of the noise around the middle of the pixel range that images start from.
INIT_NOISE = 0.05


#: Added inside the TV^β root so its gradient is finite where the image is flat (β < 2).
TV_EPS = 1e-8


def activation_match(activation: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``‖Φ(x) − Φ₀‖² / ‖Φ₀‖²`` per image: N×… , N×… → (N,) (1 for a zero-activation guess)."""
    diff = (activation - target).flatten(1).pow(2).sum(1)
    return diff / target.flatten(1).pow(2).sum(1).clamp(min=1e-12)


def total_variation(images: torch.Tensor, beta: float = 2.0, scale: float = 1.0) -> torch.Tensor:
    """``TV^β(x) = mean_{c,u} ((x_{c,u+ŷ} − x_{cu})² + (x_{c,u+x̂} − x_{cu})²)^{β/2}`` of
    ``x / scale``, per image: N×C×H×W → (N,)."""
    x = images / scale
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    return (dy.pow(2) + dx.pow(2) + TV_EPS).pow(beta / 2).flatten(1).mean(1)


def alpha_norm(
    images: torch.Tensor, alpha: float = 6.0, center: float = 0.5, scale: float = 0.5
) -> torch.Tensor:
    """``N_α(x) = mean_{c,u} |(x_{cu} − center) / scale|^α`` per image: N×C×H×W → (N,).

    With ``center``/``scale`` the middle/half-width of the pixel range, the prior is ≤ 1 inside
    the range and grows steeply (α = 6) outside it.
    """
    return ((images - center) / scale).abs().pow(alpha).flatten(1).mean(1)


def random_translation(images: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Roll the whole batch by one random ``(dy, dx) ∈ [−max_shift, max_shift]²`` (the jitter of
    Mahendran & Vedaldi 2016; torch's global RNG, so seeded runs repeat)."""
    if max_shift <= 0:
        return images
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2,)).tolist()
    return images.roll((dy, dx), dims=(-2, -1))


def initial_images(
    shape: Sequence[int], pixel_range: tuple[float, float] = (0.0, 1.0), seed: int = 0
) -> torch.Tensor:
    """The starting point: the middle of the pixel range plus N(0, ``INIT_NOISE``·range) noise."""
    low, high = pixel_range
    noise = torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed))
    return ((low + high) / 2 + INIT_NOISE * (high - low) * noise).clamp(low, high)
