"""The terms of meaningful perturbations (ops/meaningful) against their definitions."""

from __future__ import annotations

import pytest
import torch

from lightning_extremal.ops.meaningful import (
    blur_blend,
    deleted_area,
    l1_term,
    total_variation,
    translate,
    upsample_mask,
)


def test_l1_term_sums_what_each_mask_deletes():
    masks = torch.tensor([[[1.0, 0.5], [0.0, 0.25]], [[1.0, 1.0], [1.0, 1.0]]])[:, None]
    # |1 − m| summed: 0 + 0.5 + 1 + 0.75 for the first mask, nothing for the second
    assert l1_term(masks).tolist() == [2.25, 0.0]
    assert deleted_area(masks).tolist() == [2.25 / 4, 0.0]


@pytest.mark.parametrize(("beta", "expected"), [(1.0, 2.0), (2.0, 1.5), (3.0, 1.25)])
def test_total_variation_raises_each_difference_to_beta(beta, expected):
    # vertical differences 1 and 0.5, horizontal 0.5 and 0: 1 + 0.5^β + 0.5^β
    masks = torch.tensor([[0.0, 0.5], [1.0, 1.0]]).view(1, 1, 2, 2)
    assert total_variation(masks, beta).item() == pytest.approx(expected, abs=1e-7)
    assert total_variation(torch.full((2, 1, 5, 7), 0.3), beta).tolist() == [0.0, 0.0]


def test_total_variation_of_a_step_counts_its_border():
    masks = torch.zeros(1, 1, 4, 6)
    masks[..., :, 3:] = 1  # a vertical edge 4 px long: 4 unit differences whatever β
    assert total_variation(masks, 3.0).item() == 4.0
    assert total_variation(masks.transpose(-1, -2), 3.0).item() == 4.0


def test_upsample_mask_is_bilinear_and_stays_in_range():
    coarse = torch.tensor([[0.0, 1.0], [0.0, 1.0]]).view(1, 1, 2, 2)
    fine = upsample_mask(coarse, (4, 4))
    assert fine.shape == (1, 1, 4, 4)
    # align_corners=False: output u reads input (u + ½)/2 − ½, clamped at the borders
    assert fine[0, 0].tolist() == [[0.0, 0.25, 0.75, 1.0]] * 4
    params = torch.rand(3, 1, 7, 7, generator=torch.Generator().manual_seed(0))
    out = upsample_mask(params, (30, 41))
    assert out.shape == (3, 1, 30, 41) and out.min() >= params.min() and out.max() <= 1
    assert torch.equal(
        upsample_mask(torch.full((1, 1, 7, 7), 0.5), (28, 28)), torch.full((1, 1, 28, 28), 0.5)
    )


def test_blur_blend_keeps_blurs_and_has_a_gradient_at_one():
    images = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(1))
    blurred = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(2))
    index = torch.tensor([1, 0, 1])
    ones, zeros = torch.ones(3, 1, 5, 5), torch.zeros(3, 1, 5, 5)
    assert torch.equal(blur_blend(images, blurred, ones, index), images[index])
    assert torch.equal(blur_blend(images, blurred, zeros, index), blurred[index])
    half = blur_blend(images, blurred, ones / 2, index)
    torch.testing.assert_close(half, (images[index] + blurred[index]) / 2)
    masks = ones.clone().requires_grad_(True)  # the usual start: nothing deleted
    blur_blend(images, blurred, masks, index).sum().backward()
    torch.testing.assert_close(masks.grad, (images - blurred)[index].sum(1, keepdim=True))


def test_translate_moves_the_image_and_replicates_the_border():
    image = torch.arange(12.0).view(1, 1, 3, 4)
    assert torch.equal(translate(image, 0, 0), image)
    down = translate(image, 1, 0)[0, 0]
    assert down.tolist() == [[0, 1, 2, 3], [0, 1, 2, 3], [4, 5, 6, 7]]
    left = translate(image, 0, -2)[0, 0]
    assert left.tolist() == [[2, 3, 3, 3], [6, 7, 7, 7], [10, 11, 11, 11]]
    stack = torch.rand(2, 3, 3, 5, 6)  # N×L×C×H×W: only the last two dims move
    assert torch.equal(translate(stack, 1, 2)[..., 1:, 2:], stack[..., :-1, :-2])
