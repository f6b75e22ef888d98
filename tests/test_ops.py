"""Every elementary op against its definition (pyramids, blending, masks, area, rewards)."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from lightning_extremal.ops.area import achieved_area, area_loss, ones_count, reference_vector
from lightning_extremal.ops.masks import (
    gaussian_mask,
    maxconv_kernel,
    param_grid_shape,
    smooth_max_mask,
)
from lightning_extremal.ops.perturbation import (
    apply_pyramid,
    blur_pyramid,
    blur_sigmas,
    fade_pyramid,
    gaussian_blur,
    perturbation_pyramid,
)
from lightning_extremal.ops.rewards import (
    contrastive_reward,
    get_reward,
    mean_reward,
    simple_reward,
)


def _images(n: int = 2, c: int = 3, h: int = 40, w: int = 52, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g)


def _direct_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """A direct (2-D kernel, reflect-padded) torchvision blur cut at ±⌈4σ⌉."""
    k = 2 * math.ceil(4 * sigma) + 1
    return TF.gaussian_blur(x, [k, k], [sigma, sigma])


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


# --------------------------------------------------------------------------- area


@pytest.mark.parametrize("area", [0.05, 0.1, 0.3, 0.5, 0.9])
@pytest.mark.parametrize(("num_pixels", "num_visible"), [(100, None), (400, 100), (1234, 777)])
def test_reference_vector_counts(area: float, num_pixels: int, num_visible: int | None) -> None:
    ref = reference_vector(num_pixels, [area], num_visible)
    assert ref.shape == (1, num_pixels)
    visible = num_pixels if num_visible is None else num_visible
    ones = visible - math.floor((1 - area) * visible)
    assert ref.sum().item() == ones
    # zeros first, then ones
    assert torch.equal(ref[0, num_pixels - ones :], torch.ones(ones))
    assert torch.equal(ref[0, : num_pixels - ones], torch.zeros(num_pixels - ones))


def test_reference_vector_rows_per_area() -> None:
    ref = reference_vector(50, [0.1, 0.5, 0.9])
    assert ref.shape == (3, 50)
    # |Ω| − ⌊(1 − a)·|Ω|⌋ in floating point, like the reference: 50·(1 − 0.9) = 4.99… → 46 ones.
    assert ref.sum(1).tolist() == [5, 25, 46]


def test_area_loss_zero_iff_sorted_mask_matches_reference() -> None:
    g = torch.Generator().manual_seed(0)
    h = w = 10
    margin = 3
    num_ranked = (h + 2 * margin) ** 2
    ref = reference_vector(num_ranked, [0.2, 0.4], h * w)
    ones = ones_count(h * w, [0.2, 0.4])
    assert ones.tolist() == ref.sum(1).long().tolist()
    # A padded mask whose values, in any order, are exactly the reference vector.
    masks = torch.stack([r[torch.randperm(num_ranked, generator=g)] for r in ref])
    masks = masks.view(2, 1, h + 2 * margin, w + 2 * margin)
    assert torch.equal(area_loss(masks, ones), torch.zeros(2))
    # Any other mask has a positive loss: here one pixel changed.
    other = masks.clone()
    other[0, 0, 0, 0] = 0.5
    loss = area_loss(other, ones)
    assert loss[0] == pytest.approx(0.25 / num_ranked) and loss[1] == 0
    assert (area_loss(torch.rand(2, 1, 16, 16, generator=g), ones) > 0).all()


@pytest.mark.parametrize("areas", [[0.025, 0.2], [0.9, 0.95], [0.1, 0.9], [1.0, 0.5]])
@pytest.mark.parametrize("bounds", [False, True])
def test_area_loss_equals_sorted_definition(areas: list[float], bounds: bool) -> None:
    """The top-k form equals ``mean((sort(m) − r)²)`` in value and gradient, whichever of
    the top-k / bottom-(n−k) branches runs and whether the bounds are given."""
    g = torch.Generator().manual_seed(1)
    num_ranked, num_visible = 24 * 24, 18 * 18
    ref = reference_vector(num_ranked, areas, num_visible)
    ones = ones_count(num_visible, areas)
    rand = torch.rand(2, 1, 24, 24, generator=g)
    ours_in = rand.clone().requires_grad_(True)
    theirs_in = rand.clone().requires_grad_(True)
    ours = area_loss(ours_in, ones, (0, num_ranked) if bounds else None)
    theirs = (theirs_in.flatten(1).sort(1).values - ref).pow(2).mean(1)
    torch.testing.assert_close(ours, theirs)
    ours.sum().backward()
    theirs.sum().backward()
    torch.testing.assert_close(ours_in.grad, theirs_in.grad)


def test_achieved_area_is_mean() -> None:
    m = torch.zeros(2, 1, 4, 5)
    m[0, 0, :2, :3] = 1
    assert achieved_area(m).tolist() == [pytest.approx(0.3), 0.0]


# --------------------------------------------------------------------------- smooth masks

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


# --------------------------------------------------------------------------- rewards


def test_simple_and_contrastive_rewards() -> None:
    logits = torch.tensor([[1.0, 5.0, 2.0], [3.0, -1.0, 0.5]])
    targets = torch.tensor([1, 2])
    assert simple_reward(logits, targets).tolist() == [5.0, 0.5]
    # target − best other class
    assert contrastive_reward(logits, targets).tolist() == [3.0, -2.5]
    assert get_reward("simple") is simple_reward
    assert get_reward("contrastive") is contrastive_reward


def test_rewards_on_spatial_outputs_are_averaged() -> None:
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 4, 3, 5, generator=g)  # fully convolutional B×C×h×w
    targets = torch.tensor([3, 0])
    simple = simple_reward(logits, targets)
    assert simple.shape == (2, 3, 5)
    torch.testing.assert_close(simple, logits[torch.arange(2), targets])
    torch.testing.assert_close(
        mean_reward(simple_reward, logits, targets), logits[torch.arange(2), targets].mean((1, 2))
    )
    others = logits.clone()
    others[torch.arange(2), targets] = -math.inf
    expected = logits[torch.arange(2), targets] - others.amax(1)
    torch.testing.assert_close(contrastive_reward(logits, targets), expected)
    torch.testing.assert_close(
        mean_reward(contrastive_reward, logits, targets), expected.mean((1, 2))
    )


def test_get_reward() -> None:
    fn = lambda logits, t: logits[:, 0]  # noqa: E731
    assert get_reward(fn) is fn
    with pytest.raises(ValueError, match="'bogus'"):
        get_reward("bogus")


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
