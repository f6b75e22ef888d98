"""The area constraint against its definition (ops/area): reference vectors, the loss, the
achieved area."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_extremal.ops.area import achieved_area, area_loss, ones_count, reference_vector


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
