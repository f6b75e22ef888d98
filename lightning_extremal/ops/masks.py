"""Smooth masks: learnable parameters on a coarse grid turned into a full-resolution mask."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .compiling import Compiled
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
    compiled: bool = False,
    low_memory: bool = False,
) -> torch.Tensor:
    """Smooth max-convolution of grid parameters into a mask over the visible image.

    ``m_u = Σ_d z_{ud}·softmax_d(β·z_{ud})`` with ``z_{ud} = k(δ_{ud}/σ)·p_{c(u)+d}`` (see
    :func:`maxconv_kernel`), ``β`` the coldness (``β → ∞`` is a hard max) and parameters
    outside the grid taken as 0. Result clamped to [0, 1]. ``margin`` extends the mask that
    many pixels beyond every border of the image (the area constraint ranks those too).

    ``compiled`` runs the tap reduction as ``torch.compile``-fused kernels (same values; falls
    back to the eager kernels, with a warning, where compilation fails); ``low_memory`` uses a
    custom autograd Function that stores no (2r+1)²-fold tensor (slower on CPU).

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
    if compiled and coldness <= SAFE_COLDNESS and _FUSED_FORWARD.available:
        # Offsets outer, grid cells inner: the compiled loops then run over h·w contiguous
        # cells and vectorise (an inner loop over a step-wide offset row does not).
        weights = kernel.view(1, taps, step, step, 1).to(neighbours.dtype)
        mask = _FusedSmoothMax.apply(neighbours.unsqueeze(2).unsqueeze(2), weights, float(coldness))
        mask = mask.view(batch, step, step, grid_h, grid_w).permute(0, 3, 1, 4, 2)
        return _crop_mask(mask, extra * step - margin, margin, size)
    neighbours = neighbours.view(batch, taps, grid_h, 1, grid_w, 1)
    weights = kernel.view(1, taps, 1, step, 1, step).to(neighbours.dtype)
    if math.isinf(coldness):
        mask = (neighbours * weights).amax(dim=1)
    elif low_memory:
        mask = _SmoothMax.apply(neighbours, weights, float(coldness))
    else:
        # One fused softmax over the taps: faster than the chunked Function on CPUs, at the
        # cost of keeping the (2r+1)²-fold tensors for the backward pass.
        z = neighbours * weights
        mask = (z * torch.softmax(coldness * z, dim=1)).sum(dim=1)
    return _crop_mask(mask, extra * step - margin, margin, size)


def _crop_mask(mask: torch.Tensor, first: int, margin: int, size: tuple[int, int]) -> torch.Tensor:
    """B×h×s×w×s cell-major values → the B×1×(H+2·margin)×(W+2·margin) mask from pixel
    ``first`` on, clamped to [0, 1]."""
    batch, grid_h, step, grid_w, _ = mask.shape
    height, width = size
    mask = mask.reshape(batch, 1, grid_h * step, grid_w * step)
    mask = mask[..., first : first + height + 2 * margin, first : first + width + 2 * margin]
    return mask.clamp(0, 1)


#: Tap evaluations per mask (ranked pixels × taps × steps) from which ``compile="auto"``
#: compiles the smooth max: enough eager work per mask that a chunk of ~8 masks already
#: repays the one-off compile (eager ≈ 12× slower per tap than compiled on a CPU; a cold
#: compile costs about as much as 8e8 eager tap evaluations; figures in
#: benchmarks/RESULTS.md), then cached on disk. Per mask, not per chunk, so that the choice —
#: and with it the float rounding — does not depend on the batch size or the DDP shard.
AUTO_COMPILE_WORK = 1e8


def compiled_smooth_max_available(coldness: float) -> bool:
    """Whether :func:`smooth_max_mask` with ``compiled=True`` runs the fused kernels at this
    coldness (False where compiling has failed before, or the coldness could overflow)."""
    return coldness <= SAFE_COLDNESS and _FUSED_FORWARD.available


def compile_pays_off(tap_evaluations_per_mask: float) -> bool:
    """Whether compiling the smooth max pays off for masks that take this much work each."""
    return tap_evaluations_per_mask >= AUTO_COMPILE_WORK


#: Taps processed at once by the smooth max: bounds the temporary memory to
#: ``TAP_CHUNK`` full-resolution copies of the masks instead of (2r+1)².
TAP_CHUNK = 9
#: Below this coldness ``exp(β·z)`` cannot overflow float32 for ``z ∈ [0, 1]``.
SAFE_COLDNESS = 80.0


class _SmoothMax(torch.autograd.Function):
    """``m = Σ_t z_t e^{βz_t} / Σ_t e^{βz_t}`` with ``z_t = u_t·w_t``, taps processed in chunks.

    Forward keeps only ``m`` and ``S = Σ_t e^{βz_t}``; backward recomputes ``z_t`` and uses
    ``∂m/∂z_t = e^{βz_t}/S·(1 + β(z_t − m))``, so no (2r+1)²-fold tensor is ever stored.
    Shapes: ``u`` B×T×h×1×w×1 (neighbour parameters), ``w`` 1×T×1×s×1×s → B×h×s×w×s.
    """

    @staticmethod
    def forward(ctx, u: torch.Tensor, w: torch.Tensor, beta: float) -> torch.Tensor:
        shift = _stability_shift(u, w, beta)
        total = numer = None
        for t in range(0, u.shape[1], TAP_CHUNK):
            z = u[:, t : t + TAP_CHUNK] * w[:, t : t + TAP_CHUNK]
            e = torch.exp(beta * z - shift)
            part_total, part_numer = e.sum(1), (z * e).sum(1)
            total = part_total if total is None else total.add_(part_total)
            numer = part_numer if numer is None else numer.add_(part_numer)
        mask = numer.div_(total)
        ctx.save_for_backward(u, w, mask, total, shift)
        ctx.beta = beta
        return mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        u, w, mask, total, shift = ctx.saved_tensors
        beta = ctx.beta
        scaled = (grad / total).unsqueeze(1)
        mask = mask.unsqueeze(1)
        grads = []
        for t in range(0, u.shape[1], TAP_CHUNK):
            wt = w[:, t : t + TAP_CHUNK]
            z = u[:, t : t + TAP_CHUNK] * wt
            e = torch.exp(beta * z - shift)
            dz = scaled * e * (1 + beta * (z - mask))
            grads.append((dz * wt).sum(dim=(3, 5), keepdim=True))
        return torch.cat(grads, dim=1), None, None


def _fused_forward(u: torch.Tensor, w: torch.Tensor, beta: float):
    """Forward of :class:`_FusedSmoothMax` written tap by tap, so that the compiler emits
    one pass over the pixels with the taps as an inner loop (nothing (2r+1)²-fold stored)."""
    numer = total = None
    for t in range(u.shape[1]):
        z = u[:, t] * w[:, t]
        e = torch.exp(beta * z)
        numer = z * e if numer is None else numer + z * e
        total = e if total is None else total + e
    return numer / total, total


def _fused_backward(grad, u, w, mask, total, beta: float):
    """``∂L/∂u_t = Σ_{offsets} g/S·e^{βz_t}·(1 + β(z_t − m))·w_t`` (B×T×1×1×h·w)."""
    z = u * w
    e = torch.exp(beta * z)
    dz = (grad / total).unsqueeze(1) * e * (1 + beta * (z - mask.unsqueeze(1)))
    return (dz * w).sum(dim=(2, 3), keepdim=True)


_FUSED_FORWARD = Compiled(_fused_forward)
_FUSED_BACKWARD = Compiled(_fused_backward)


class _FusedSmoothMax(torch.autograd.Function):
    """:class:`_SmoothMax` as two compiled kernels, offsets outer and grid cells inner:
    ``u`` B×T×1×1×(h·w) (neighbour parameters), ``w`` 1×T×s×s×1 → B×s×s×(h·w)."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, w: torch.Tensor, beta: float) -> torch.Tensor:
        mask, total = _FUSED_FORWARD(u, w, beta)
        ctx.save_for_backward(u, w, mask, total)
        ctx.beta = beta
        return mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        u, w, mask, total = ctx.saved_tensors
        return _FUSED_BACKWARD(grad.contiguous(), u, w, mask, total, ctx.beta), None, None


def _stability_shift(u: torch.Tensor, w: torch.Tensor, beta: float) -> torch.Tensor | float:
    """0 when ``exp(β·z)`` is safe, else ``β·max_t z_t`` per pixel (the usual softmax shift)."""
    if beta <= SAFE_COLDNESS:
        return torch.zeros((), dtype=u.dtype, device=u.device)
    return (beta * (u * w).amax(dim=1, keepdim=True)).detach()


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
