"""Blur and fade pyramids and their blending against their definitions (ops/perturbation)."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_extremal.ops.perturbation import (
    apply_pyramid,
    blur_pyramid,
    blur_sigmas,
    fade_pyramid,
    gaussian_blur,
    perturbation_pyramid,
)
from tests.helpers import direct_blur as _direct_blur


def _images(n: int = 2, c: int = 3, h: int = 40, w: int = 52, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g)


# --------------------------------------------------------------------------- pyramids


def test_blur_sigmas_definition() -> None:
    assert blur_sigmas(8, 20.0) == pytest.approx([20 * (1 - l / 7) for l in range(8)])
    assert blur_sigmas(8, 20.0)[-1] == 0


def test_blur_pyramid_levels() -> None:
    x = _images()
    pyr = blur_pyramid(x, num_levels=5, max_blur=4.0)
    assert pyr.shape == (2, 5, 3, 40, 52)
    # Last level: the image itself, bit for bit.
    assert torch.equal(pyr[:, -1], x)
    # First level: a direct torchvision blur with σ = max_blur.
    torch.testing.assert_close(pyr[:, 0], _direct_blur(x, 4.0), atol=1e-5, rtol=0)
    # Every intermediate level: the blur with σ_l = max_blur·(1 − l/(L−1)).
    for level in range(1, 4):
        sigma = 4.0 * (1 - level / 4)
        torch.testing.assert_close(pyr[:, level], _direct_blur(x, sigma), atol=1e-5, rtol=0)


def test_fade_pyramid_levels() -> None:
    x = _images()
    pyr = fade_pyramid(x, num_levels=8)
    assert pyr.shape == (2, 8, 3, 40, 52)
    assert torch.equal(pyr[:, 0], torch.zeros_like(x))
    assert torch.equal(pyr[:, -1], x)
    for level in range(8):
        torch.testing.assert_close(pyr[:, level], x * level / 7, atol=1e-7, rtol=0)


def test_perturbation_pyramid_dispatch() -> None:
    x = _images(n=1)
    assert torch.equal(perturbation_pyramid(x, "fade", 4), fade_pyramid(x, 4))
    assert torch.equal(perturbation_pyramid(x, "blur", 4, 3.0), blur_pyramid(x, 4, 3.0))
    with pytest.raises(ValueError, match="'smear'"):
        perturbation_pyramid(x, "smear")
    with pytest.raises(ValueError, match="'mirror'"):
        gaussian_blur(x, 2.0, padding="mirror")


def test_gaussian_blur_sigma_zero_is_identity() -> None:
    x = _images(n=1)
    assert gaussian_blur(x, 0.0) is x


def test_reflect_blur_keeps_constant_image_constant() -> None:
    x = torch.full((1, 3, 48, 48), 0.7)
    reflect = gaussian_blur(x, 5.0, "reflect")
    torch.testing.assert_close(reflect, x, atol=1e-6, rtol=0)
    zeros = gaussian_blur(x, 5.0, "zeros")
    # Zero padding darkens the border (corner ≈ 0.7/4) but not the centre.
    assert zeros[..., 0, 0].max() < 0.7 * 0.3
    assert zeros[..., 0, 24].max() < 0.7 * 0.6
    torch.testing.assert_close(zeros[..., 24, 24], x[..., 24, 24], atol=1e-5, rtol=0)


def test_zero_padded_blur_is_a_zero_padded_convolution() -> None:
    x = _images(n=1, h=30, w=30)
    sigma = 3.0
    half = math.ceil(4 * sigma)
    t = torch.arange(-half, half + 1, dtype=torch.float64)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = (g / g.sum()).float()
    kernel = (g.view(-1, 1) * g.view(1, -1)).expand(3, 1, -1, -1)
    expected = torch.nn.functional.conv2d(x, kernel, padding=half, groups=3)
    torch.testing.assert_close(gaussian_blur(x, sigma, "zeros"), expected, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- blending


def _pyramid_and_index() -> tuple[torch.Tensor, torch.Tensor]:
    pyr = blur_pyramid(_images(n=2, h=24, w=20), num_levels=8, max_blur=3.0)
    return pyr, torch.tensor([1, 0, 1])


def test_apply_pyramid_exact_at_level_boundaries() -> None:
    pyr, index = _pyramid_and_index()
    for level in range(8):
        masks = torch.full((3, 1, 24, 20), level / 7)
        out = apply_pyramid(pyr, masks, index)
        torch.testing.assert_close(out, pyr[index, level], atol=1e-6, rtol=0)
    # m = 1 and m = 0 hit the end levels bit for bit.
    assert torch.equal(apply_pyramid(pyr, torch.ones(3, 1, 24, 20), index), pyr[index, 7])
    assert torch.equal(apply_pyramid(pyr, torch.zeros(3, 1, 24, 20), index), pyr[index, 0])


def test_apply_pyramid_linear_between_levels() -> None:
    pyr, index = _pyramid_and_index()
    g = torch.Generator().manual_seed(1)
    level = torch.randint(0, 7, (3, 1, 24, 20), generator=g)
    frac = torch.rand(3, 1, 24, 20, generator=g)
    masks = (level + frac) / 7
    out = apply_pyramid(pyr, masks, index)
    gathered = pyr[index]  # 3×L×C×H×W
    lo = gathered.gather(1, level.unsqueeze(1).expand(-1, 1, 3, -1, -1)).squeeze(1)
    hi = gathered.gather(1, (level + 1).unsqueeze(1).expand(-1, 1, 3, -1, -1)).squeeze(1)
    torch.testing.assert_close(out, (1 - frac) * lo + frac * hi, atol=1e-5, rtol=0)


def test_apply_pyramid_gradient_flows_to_masks_only() -> None:
    pyr, index = _pyramid_and_index()
    masks = torch.full((3, 1, 24, 20), 0.3, requires_grad=True)
    apply_pyramid(pyr, masks, index).sum().backward()
    # d out / d m = (L−1)·(y_{k+1} − y_k), summed over channels.
    k = math.floor(0.3 * 7)
    expected = 7 * (pyr[index, k + 1] - pyr[index, k]).sum(1, keepdim=True)
    torch.testing.assert_close(masks.grad, expected, atol=1e-5, rtol=1e-5)
