"""Smooth masks: learnable parameters on a coarse grid turned into a full-resolution mask."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .perturbation import gaussian_blur


def param_grid_shape(height: int, width: int, step: int) -> tuple[int, int]:
    """Parameter grid ``(⌈H/step⌉, ⌈W/step⌉)``; parameter ``(i, j)`` sits at pixel ``(step·i, step·j)``."""
    return math.ceil(height / step), math.ceil(width / step)


def maxconv_radius(step: int, sigma: float) -> int:
    """Neighbourhood radius ``r = 1 + ⌈σ/step⌉`` (in grid cells) of the smooth max-convolution."""
    return 1 + math.ceil(sigma / step)


def maxconv_kernel(step: int, sigma: float) -> torch.Tensor:
    """Weights of the smooth max-convolution for one grid cell, ``(2r+1)²×step×step``.

    A pixel at offset ``o = (o_y, o_x)`` inside cell ``c`` sees the parameters of cells
    ``c + d`` for ``d ∈ [−r, r]²``, at distance ``δ = ‖o − step·d‖`` pixels, weighted by
    ``k(δ/σ)`` with ``k(z) = exp(−2·max(0, z − ½)²)`` (flat within σ/2, then Gaussian decay).
    The weights do not depend on ``c``, so one cell's pattern serves the whole image.
    """
    radius = maxconv_radius(step, sigma)
    d = torch.arange(-radius, radius + 1, dtype=torch.float64)
    o = torch.arange(step, dtype=torch.float64)
    delta_1d = o.view(1, -1) - step * d.view(-1, 1)  # (2r+1) × step
    delta = torch.sqrt(delta_1d.view(-1, 1, step, 1) ** 2 + delta_1d.view(1, -1, 1, step) ** 2)
    weights = torch.exp(-2 * (delta / sigma - 0.5).clamp(min=0) ** 2)
    return weights.reshape(-1, step, step).float()


def smooth_max_mask(
    params: torch.Tensor,
    kernel: torch.Tensor,
    size: tuple[int, int],
    coldness: float = 20.0,
    margin: int = 0,
) -> torch.Tensor:
    """Smooth max-convolution of grid parameters into a mask over the visible image.

    ``m_u = Σ_d z_{ud}·softmax_d(β·z_{ud})`` with ``z_{ud} = k(δ_{ud}/σ)·p_{c(u)+d}`` (see
    :func:`maxconv_kernel`), ``β`` the coldness (``β → ∞`` is a hard max) and parameters
    outside the grid taken as 0. Result clamped to [0, 1]. ``margin`` extends the mask that
    many pixels beyond every border of the image (the area constraint ranks those too).

    Shapes: ``params`` B×1×h×w, ``kernel`` (2r+1)²×s×s, ``size`` (H, W) with H ≤ s·h,
    W ≤ s·w → B×1×(H+2·margin)×(W+2·margin).
    """
    batch, _, grid_h, grid_w = params.shape
    taps, step, _ = kernel.shape
    radius = (math.isqrt(taps) - 1) // 2
    height, width = size
    extra = math.ceil(margin / step)
    if extra:
        params = F.pad(params, (extra, extra, extra, extra))
        grid_h, grid_w = grid_h + 2 * extra, grid_w + 2 * extra
    neighbours = F.unfold(params, 2 * radius + 1, padding=radius)  # B × taps × (h·w)
    neighbours = neighbours.view(batch, taps, grid_h, 1, grid_w, 1)
    z = neighbours * kernel.view(1, taps, 1, step, 1, step)
    first = extra * step - margin
    z = z.reshape(batch, taps, grid_h * step, grid_w * step)
    z = z[..., first : first + height + 2 * margin, first : first + width + 2 * margin]
    if math.isinf(coldness):
        mask = z.amax(dim=1, keepdim=True)
    else:
        mask = (z * torch.softmax(coldness * z, dim=1)).sum(dim=1, keepdim=True)
    return mask.clamp(0, 1)


def gaussian_mask(
    params: torch.Tensor, step: int, sigma: float, size: tuple[int, int], margin: int = 0
) -> torch.Tensor:
    """The paper's alternative smoothing: ``m = g_σ * upsample_step(p)`` (reflect padding).

    Parameters are upsampled by repetition (each covers its ``step×step`` cell) and blurred
    by a Gaussian of std ``sigma``. A convex combination of parameters, so ``m ∈ [0, 1]``
    whenever ``p ∈ [0, 1]``. As for :func:`smooth_max_mask`, parameters outside the grid are
    0 and ``margin`` extends the mask beyond the image. Shapes: B×1×h×w →
    B×1×(H+2·margin)×(W+2·margin).
    """
    height, width = size
    up = params.repeat_interleave(step, dim=2).repeat_interleave(step, dim=3)
    up = F.pad(up[..., :height, :width], (margin, margin, margin, margin))
    return gaussian_blur(up, sigma, "reflect")
