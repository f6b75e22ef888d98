"""Smooth masks against their definitions (ops/masks): smooth max, Gaussian, low memory."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_extremal.ops.masks import (
    gaussian_mask,
    maxconv_kernel,
    param_grid_shape,
    smooth_max_mask,
)
from tests.helpers import direct_blur as _direct_blur

MASK_CASES = [(40, 40, 4, 8.0), (37, 53, 7, 21.0), (30, 22, 5, 7.0)]


@pytest.mark.parametrize(("h", "w", "step", "sigma"), MASK_CASES)
@pytest.mark.parametrize("margin", [0, 8])
def test_smooth_max_mask_range_and_shape(
    h: int, w: int, step: int, sigma: float, margin: int
) -> None:
    grid = param_grid_shape(h, w, step)
    params = torch.rand(3, 1, *grid, generator=torch.Generator().manual_seed(2))
    mask = smooth_max_mask(params, maxconv_kernel(step, sigma), (h, w), margin=margin)
    assert mask.shape == (3, 1, h + 2 * margin, w + 2 * margin)
    assert mask.min() >= 0 and mask.max() <= 1


@pytest.mark.parametrize(("h", "w", "step", "sigma"), MASK_CASES)
def test_smooth_max_mask_all_ones(h: int, w: int, step: int, sigma: float) -> None:
    """All-ones parameters: the hard max is k(δ_min/σ), δ_min the distance to the nearest
    parameter, so exactly 1 wherever a parameter lies within σ/2 (everywhere for the reference's
    step 7 / σ 21; not at pixels beyond the last parameter row/column when step is close to σ/2,
    e.g. 40 px, step 4, σ 8: pixel 39 is √18 > 4 px from parameter (36, 36))."""
    grid = param_grid_shape(h, w, step)
    params = torch.ones(1, 1, *grid)
    kernel = maxconv_kernel(step, sigma)
    hard = smooth_max_mask(params, kernel, (h, w), math.inf)
    dy = (torch.arange(h).view(-1, 1) - step * torch.arange(grid[0]).view(1, -1)).abs().amin(1)
    dx = (torch.arange(w).view(-1, 1) - step * torch.arange(grid[1]).view(1, -1)).abs().amin(1)
    nearest = torch.sqrt(dy.view(-1, 1).double() ** 2 + dx.view(1, -1).double() ** 2)
    expected = torch.exp(-2 * (nearest / sigma - 0.5).clamp(min=0) ** 2).float()
    torch.testing.assert_close(hard[0, 0], expected, atol=1e-6, rtol=0)
    inside = nearest <= sigma / 2
    assert inside.float().mean() > 0.8
    assert torch.equal(hard[0, 0][inside], torch.ones(int(inside.sum())))
    # Smooth max with β = 20: slightly below 1 (≈ 0.985; the reference behaves the same).
    # Smooth max with β = 20: slightly below 1 (≈ 0.985 for σ ≥ 2·step; the reference behaves
    # the same). With σ close to step (5 / 7) neighbours at k(5/7) ≈ 0.91 drag it to ≈ 0.964.
    soft = smooth_max_mask(params, kernel, (h, w))
    assert soft[0, 0][inside].min() >= (0.97 if sigma >= 2 * step else 0.95)
    # A softmax-weighted mean never exceeds the max.
    assert (soft <= hard + 1e-6).all()


def test_smooth_max_mask_exactly_one_with_reference_grid() -> None:
    params = torch.ones(2, 1, *param_grid_shape(56, 49, 7))
    mask = smooth_max_mask(params, maxconv_kernel(7, 21.0), (56, 49), math.inf)
    assert torch.equal(mask, torch.ones(2, 1, 56, 49))


def test_smooth_max_mask_definition_at_one_pixel() -> None:
    """m_u = Σ_d z_d softmax(β z_d), z_d = k(‖u − step·(c+d)‖/σ)·p_{c+d}, by hand."""
    h, w, step, sigma, beta = 20, 24, 4, 6.0, 20.0
    grid = param_grid_shape(h, w, step)
    params = torch.rand(1, 1, *grid, generator=torch.Generator().manual_seed(3))
    mask = smooth_max_mask(params, maxconv_kernel(step, sigma), (h, w), beta)
    r = 1 + math.ceil(sigma / step)
    for v, u in [(0, 0), (9, 13), (19, 23), (6, 1)]:
        cy, cx = v // step, u // step
        z = []
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                iy, ix = cy + dy, cx + dx
                p = params[0, 0, iy, ix].item() if 0 <= iy < grid[0] and 0 <= ix < grid[1] else 0
                dist = math.hypot(v - step * iy, u - step * ix) / sigma
                z.append(math.exp(-2 * max(0.0, dist - 0.5) ** 2) * p)
        z = torch.tensor(z, dtype=torch.float64)
        expected = (z * torch.softmax(beta * z, 0)).sum().clamp(0, 1).item()
        assert mask[0, 0, v, u].item() == pytest.approx(expected, abs=1e-6)


def test_smooth_max_mask_margin_crop_is_consistent() -> None:
    h, w, step, sigma = 30, 26, 5, 10.0
    params = torch.rand(2, 1, *param_grid_shape(h, w, step))
    kernel = maxconv_kernel(step, sigma)
    plain = smooth_max_mask(params, kernel, (h, w))
    padded = smooth_max_mask(params, kernel, (h, w), margin=7)
    torch.testing.assert_close(padded[..., 7 : 7 + h, 7 : 7 + w], plain)
    # Far outside the grid there are no parameters: the margin decays towards 0.
    assert padded[..., 0, 0].max() < plain.max()


@pytest.mark.parametrize(("h", "w", "step", "sigma"), MASK_CASES)
def test_gaussian_mask(h: int, w: int, step: int, sigma: float) -> None:
    grid = param_grid_shape(h, w, step)
    rand = torch.rand(2, 1, *grid, generator=torch.Generator().manual_seed(4))
    mask = gaussian_mask(rand, step, sigma, (h, w), margin=5)
    assert mask.shape == (2, 1, h + 10, w + 10)
    assert mask.min() >= 0 and mask.max() <= 1
    ones = gaussian_mask(torch.ones(1, 1, *grid), step, sigma, (h, w))
    torch.testing.assert_close(ones, torch.ones(1, 1, h, w), atol=1e-6, rtol=0)


def test_gaussian_mask_definition() -> None:
    """m = g_σ * upsample_step(p), with the reflect-padded blur."""
    h, w, step, sigma = 24, 20, 4, 3.0
    params = torch.rand(1, 1, *param_grid_shape(h, w, step))
    up = params.repeat_interleave(step, 2).repeat_interleave(step, 3)[..., :h, :w]
    expected = _direct_blur(up, sigma)
    torch.testing.assert_close(
        gaussian_mask(params, step, sigma, (h, w)), expected, atol=1e-5, rtol=0
    )


def test_low_memory_smooth_max_equals_default() -> None:
    """The chunked autograd Function computes the same mask and gradient as the softmax form."""
    from lightning_extremal.ops.masks import maxconv_kernel, smooth_max_mask

    torch.manual_seed(0)
    kernel = maxconv_kernel(5, 10.0)
    params = torch.rand(3, 1, 10, 10, requires_grad=True)
    weights = torch.rand(3, 1, 70, 70)
    plain = smooth_max_mask(params, kernel, (50, 50), 20.0, 10)
    low = smooth_max_mask(params, kernel, (50, 50), 20.0, 10, low_memory=True)
    (g_plain,) = torch.autograd.grad((plain * weights).sum(), params)
    (g_low,) = torch.autograd.grad((low * weights).sum(), params)
    assert (plain - low).abs().max() <= 1e-5
    assert (g_plain - g_low).abs().max() <= 1e-5 * g_plain.abs().max()
