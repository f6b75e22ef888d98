"""The ops against TorchRay, the archived reference implementation, used as a test oracle.

Where this package deliberately differs from the reference (reflect-padded blur, area counted on
the visible image) the difference is tested, not hidden; so are the reference's own quirks for
σ that is not a multiple of the step.
"""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("torchray")

from torchray.attribution.extremal_perturbation import (  # noqa: E402
    MaskGenerator,
    Perturbation,
)

from lightning_extremal.config import MethodConfig  # noqa: E402
from lightning_extremal.modules.image_masks import ExtremalPerturbationModule  # noqa: E402
from lightning_extremal.ops.area import reference_vector  # noqa: E402
from lightning_extremal.ops.masks import maxconv_kernel, smooth_max_mask  # noqa: E402
from lightning_extremal.ops.perturbation import (  # noqa: E402
    apply_pyramid,
    blur_pyramid,
    fade_pyramid,
)

# TorchRay's MaskGenerator calls torch.meshgrid without `indexing=`.
pytestmark = pytest.mark.filterwarnings("ignore:torch.meshgrid:UserWarning")

TOL = 1e-5


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- (a) smooth masks

# (H, W, step, σ) with σ a multiple of the step: the reference's geometry is exact there.
MULTIPLE_CASES = [
    (56, 56, 7, 21),  # reference defaults
    (37, 53, 7, 21),  # non-square, not a multiple of the step
    (40, 64, 4, 8),
    (50, 34, 7, 14),
    (48, 48, 4, 4),
]


@pytest.mark.parametrize(("h", "w", "step", "sigma"), MULTIPLE_CASES)
def test_smooth_max_mask_matches_mask_generator(h: int, w: int, step: int, sigma: int) -> None:
    gen = MaskGenerator((h, w), step, sigma)
    kernel = maxconv_kernel(step, sigma)
    for seed, params in enumerate(
        [_rand(3, 1, *gen.shape_in, seed=1), torch.ones(1, 1, *gen.shape_in)]
    ):
        ref_cropped, ref_padded = gen.generate(params)
        ours = smooth_max_mask(params, kernel, (h, w))
        assert ours.shape == ref_cropped.shape == (len(params), 1, h, w), seed
        torch.testing.assert_close(ours, ref_cropped, atol=TOL, rtol=0)

        # With margin σ our padded mask starts σ px before the image, like the reference's.
        # The reference's padded mask is step·shape_mid − step + 1 px wide (asymmetric: its
        # right/bottom margin is shorter), so compare the common top-left region.
        padded = smooth_max_mask(params, kernel, (h, w), margin=sigma)
        assert padded.shape[-2:] == (h + 2 * sigma, w + 2 * sigma)
        ch = min(padded.shape[-2], ref_padded.shape[-2])
        cw = min(padded.shape[-1], ref_padded.shape[-1])
        assert ch >= h + sigma and cw >= w + sigma
        torch.testing.assert_close(
            padded[..., :ch, :cw], ref_padded[..., :ch, :cw], atol=TOL, rtol=0
        )


def test_smooth_max_mask_sigma_not_a_multiple_of_step() -> None:
    """σ an integer but not a multiple of the step: values agree within 5e-5, not 1e-5.

    Two reference quirks, measured with TorchRay 1.0:

    * its cropped mask can be SMALLER than the requested shape: its padded mask is
      ``step·shape_mid − step + 1`` px with ``shape_mid`` built from ``⌈(2σ)/step⌉``, which for
      e.g. 48 px, step 7, σ 10 gives a 47×47 "cropped" mask (224 px → 222×222);
    * it picks each pixel's (2r+1)² neighbourhood of parameters from the cell of the *padded*
      coordinate ``⌊(v + σ)/step⌋``, not of the image coordinate ``⌊v/step⌋``, so for some
      pixels the neighbourhood is shifted by one cell. The parameters swapped in and out lie
      ≥ r·step px away and have kernel weights ≈ 1e-3, which moves the soft max by ≤ ~2e-5.

    This package always returns H×W and centres the neighbourhood on the pixel's own cell.
    """
    for (h, w, step, sigma), short in [((48, 48, 7, 10), 1), ((64, 64, 4, 6), 1)]:
        gen = MaskGenerator((h, w), step, sigma)
        params = _rand(3, 1, *gen.shape_in, seed=2)
        ref, _ = gen.generate(params)
        ours = smooth_max_mask(params, maxconv_kernel(step, sigma), (h, w))
        assert ours.shape[-2:] == (h, w)
        assert ref.shape[-2:] == (h - short, w - short)  # the reference's truncation
        diff = (ours[..., : h - short, : w - short] - ref).abs().max().item()
        assert diff < 5e-5
        # All-ones parameters: the shifted neighbours do not matter at all.
        ones = torch.ones(1, 1, *gen.shape_in)
        torch.testing.assert_close(
            smooth_max_mask(ones, maxconv_kernel(step, sigma), (h, w))[
                ..., : h - short, : w - short
            ],
            gen.generate(ones)[0],
            atol=TOL,
            rtol=0,
        )


def test_smooth_max_mask_non_integer_sigma_differs() -> None:
    """Non-integer σ: the reference puts parameter i at padded pixel ``σ + step·i`` but crops at
    ``round(σ)``, so its parameters sit ``σ − round(σ)`` px off the pixel grid (σ = 10.5:
    Python rounds to 10, a 0.5 px shift). This package keeps parameter i on pixel step·i, so
    the masks differ by that sub-pixel shift (≈ 0.1 for random parameters)."""
    h = w = 48
    step, sigma = 7, 10.5
    gen = MaskGenerator((h, w), step, sigma)
    params = _rand(2, 1, *gen.shape_in, seed=3)
    ref, _ = gen.generate(params)
    ours = smooth_max_mask(params, maxconv_kernel(step, sigma), (h, w))
    rh, rw = ref.shape[-2:]
    assert (ours[..., :rh, :rw] - ref).abs().max() > 1e-2
    # Integer σ next to it agrees (the difference is the shift, not the kernel).
    gen = MaskGenerator((h, w), step, 14)
    params = _rand(2, 1, *gen.shape_in, seed=3)
    torch.testing.assert_close(
        smooth_max_mask(params, maxconv_kernel(step, 14), (h, w)),
        gen.generate(params)[0],
        atol=TOL,
        rtol=0,
    )


# --------------------------------------------------------------------------- (b) pyramids


def test_zero_padded_blur_pyramid_matches_perturbation() -> None:
    x = _rand(1, 3, 64, 80, seed=4)
    ours = blur_pyramid(x, 8, 20, padding="zeros")
    ref = Perturbation(x, num_levels=8).pyramid  # L×C×H×W, zero-padded imsmooth
    assert ours.shape == (1, *ref.shape)
    torch.testing.assert_close(ours[0], ref, atol=TOL, rtol=0)


def test_fade_pyramid_matches_perturbation() -> None:
    x = _rand(1, 3, 40, 36, seed=5)
    ref = Perturbation(x, num_levels=8, type="fade").pyramid
    torch.testing.assert_close(fade_pyramid(x, 8)[0], ref, atol=TOL, rtol=0)


# --------------------------------------------------------------------------- (c) blending


@pytest.mark.parametrize("kind", ["blur", "fade"])
def test_apply_pyramid_matches_perturbation_apply(kind: str) -> None:
    x = _rand(1, 3, 40, 48, seed=6)
    perturbation = Perturbation(x, num_levels=8, max_blur=6, type=kind)
    ours = blur_pyramid(x, 8, 6, padding="zeros") if kind == "blur" else fade_pyramid(x, 8)
    masks = _rand(5, 1, 40, 48, seed=7)
    masks[0] = 0.0
    masks[1] = 1.0
    masks[2] = torch.arange(8).float().div(7).repeat(40, 6)  # every level boundary
    masks[3, :, :20] = 0.0
    masks[3, :, 20:] = 1.0
    expected = perturbation.apply(masks)
    got = apply_pyramid(ours, masks, torch.zeros(5, dtype=torch.long))
    assert got.shape == expected.shape == (5, 3, 40, 48)
    torch.testing.assert_close(got, expected, atol=TOL, rtol=0)


# --------------------------------------------------------------------------- (d) deliberate differences


def test_reflect_blur_differs_at_borders_only() -> None:
    """Default reflect padding: no dark borders, so it differs from the zero-padded reference
    near the border but equals it farther than 4σ (the kernel's support) from every border."""
    max_blur = 4.0
    x = _rand(1, 3, 72, 72, seed=8)
    ref = Perturbation(x, num_levels=8, max_blur=max_blur).pyramid
    ours = blur_pyramid(x, 8, max_blur)[0]  # padding="reflect"
    far = math.ceil(4 * max_blur) + 1
    torch.testing.assert_close(
        ours[..., far:-far, far:-far], ref[..., far:-far, far:-far], atol=TOL, rtol=0
    )
    border = (ours[0] - ref[0])[..., :2, :].abs()
    assert border.max() > 0.1  # the reference darkens the border
    assert ours[0, :, :2].mean() > ref[0, :, :2].mean() + 0.05
    # The unblurred level is the image in both.
    assert torch.equal(ours[-1], x[0])


@pytest.mark.parametrize("area", [0.05, 0.1, 0.3])
def test_area_reference_counts_the_visible_image(area: float) -> None:
    """The reference vector's ones are a fraction of the VISIBLE image, while TorchRay counts a
    fraction of its padded mask (``reference[i, :int(max_area * (1 - a))] = 0`` with
    ``max_area = prod(shape_out)``)."""
    h = w = 56
    step, sigma = 7, 21
    config = MethodConfig(areas=[area], step=step, sigma=sigma, max_iter=1)
    module = ExtremalPerturbationModule(
        torch.nn.Identity(),
        torch.zeros(1, 3, h, w),
        torch.tensor([0]),
        torch.tensor([0]),
        config,
    )
    assert module.margin == sigma
    ranked = (h + 2 * sigma) * (w + 2 * sigma)
    ours = int(module.ones[0])
    assert ours == h * w - math.floor((1 - area) * h * w)
    assert ours == int(reference_vector(ranked, [area], h * w).sum())

    max_area = math.prod(MaskGenerator((h, w), step, sigma).shape_out)
    theirs = max_area - int(max_area * (1 - area))
    assert theirs > 2 * ours  # the padded mask is more than twice the image here
