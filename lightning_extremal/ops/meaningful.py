"""The terms of meaningful perturbations (Fong & Vedaldi, ICCV 2017): a coarse mask upsampled
to the image, its L1 deletion cost, its total variation, and the jitter of the input.

Convention (the paper's): ``m = 1`` keeps a pixel, ``m = 0`` replaces it by its perturbation.
The objective of one mask is ``λ₁·‖1 − m‖₁ + λ₂·TV_β(m) + f_c(Φ(x(· − τ); m))``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def upsample_mask(params: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``m = up(M)``: the coarse mask ``M`` (B×1×h×w, e.g. 28×28) resized bilinearly to the
    image (``align_corners=False``) → B×1×H×W.

    Each output value is a convex combination of coarse values, so ``M ∈ [0, 1]`` gives
    ``m ∈ [0, 1]``; a constant ``M`` gives the same constant ``m``.
    """
    return F.interpolate(params, size=tuple(size), mode="bilinear", align_corners=False)


def l1_term(masks: torch.Tensor) -> torch.Tensor:
    """``‖1 − m‖₁ = Σ_u |1 − m_u|``: how much of the image a mask deletes (a sum over pixels,
    as in the paper, so the weight λ₁ is per pixel). Shapes: B×… → (B,)."""
    return (1 - masks).abs().flatten(1).sum(1)


def total_variation(masks: torch.Tensor, beta: float) -> torch.Tensor:
    """``TV_β(m) = Σ_{v,u} |m_{v+1,u} − m_{v,u}|^β + |m_{v,u+1} − m_{v,u}|^β``: the β-th power
    of the mask's forward differences, summed over the pixels (the paper's
    ``Σ_u ‖∇m(u)‖_β^β`` with finite differences). Shapes: B×…×H×W → (B,)."""
    dy = (masks[..., 1:, :] - masks[..., :-1, :]).abs().pow(beta).flatten(1).sum(1)
    dx = (masks[..., :, 1:] - masks[..., :, :-1]).abs().pow(beta).flatten(1).sum(1)
    return dy + dx


def translate(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``x(· − τ)`` with ``τ = (dy, dx)`` px (non-negative or negative integers): each image
    moved down by ``dy`` and right by ``dx``, its border replicated into the uncovered strip.
    Shapes: …×H×W → …×H×W (the leading dims are flattened for the padding)."""
    if dy == 0 and dx == 0:
        return images
    height, width = images.shape[-2:]
    pad_y, pad_x = abs(dy), abs(dx)
    flat = images.reshape(-1, 1, height, width)
    padded = F.pad(flat, (pad_x, pad_x, pad_y, pad_y), mode="replicate")
    top, left = pad_y - dy, pad_x - dx
    return padded[..., top : top + height, left : left + width].reshape(images.shape)


def blur_blend(
    images: torch.Tensor, blurred: torch.Tensor, masks: torch.Tensor, image_index: torch.Tensor
) -> torch.Tensor:
    """``Φ(x; m) = m ⊙ x + (1 − m) ⊙ x_σ``: each mask's image where ``m = 1``, its blurred copy
    where ``m = 0``, linear in between (so ``∂Φ/∂m = x − x_σ`` everywhere, also at ``m = 1``).

    Shapes: ``images``, ``blurred`` N×C×H×W, ``masks`` B×1×H×W, ``image_index`` (B,) long
    (which image each mask perturbs) → B×C×H×W.
    """
    x, x_blur = images[image_index], blurred[image_index]
    return x_blur + masks * (x - x_blur)


def deleted_area(masks: torch.Tensor) -> torch.Tensor:
    """``mean_u (1 − m_u)``: the fraction of the image a mask deletes, B×… → (B,)."""
    return (1 - masks).flatten(1).mean(1)
