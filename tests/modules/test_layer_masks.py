"""Masks over a layer's channels or its spatial grid (modules/layer_masks) find what tiny
hand-built networks read."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_extremal import extremal_perturbation
from tests.helpers import GOOD, ChannelNet, TinyConvNet
from tests.helpers import random_images as _images

BOX = (4, 7, 5, 6)  # top, left, height, width of LayerBoxNet's box, in layer cells


class LayerBoxNet(nn.Module):
    """``features`` (stride-2 conv + ReLU: a 16×16 grid for 32×32 images); class 0 scores
    10 × the mean activation inside ``BOX`` of that grid, class 1 scores 0."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 2, stride=2), nn.ReLU())
        top, left, height, width = BOX
        inside = torch.zeros(16, 16)
        inside[top : top + height, left : left + width] = 1
        self.register_buffer("weights", inside / inside.sum())
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.features[0].weight.copy_(
                0.5 * torch.rand(self.features[0].weight.shape, generator=generator)
            )
            self.features[0].bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = 10 * (self.features(x).mean(1) * self.weights).sum((1, 2))
        return torch.stack([score, torch.zeros_like(score)], 1)


# --------------------------------------------------------------------------- channels


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["preserve", "delete"])
@pytest.mark.parametrize("area", [2, 0.25])  # a count, and the fraction giving 2 of 8
def test_channel_attribution_finds_exactly_the_channels_the_network_reads(variant, area):
    model, x = ChannelNet(), _images(2)
    result = extremal_perturbation(
        model,
        x,
        0,
        [area],
        layer="act",
        kind="channel",
        variant=variant,
        max_iter=300,
        progress=False,
    )
    masks = result.masks[:, 0]
    assert masks.shape == (2, 8)
    good = torch.zeros(8, dtype=torch.bool)
    good[list(GOOD)] = True
    assert (masks[:, good] > 0.99).all() and (masks[:, ~good] < 0.01).all()
    torch.testing.assert_close(result.achieved_areas, torch.full((2, 1), 0.25), atol=0.01, rtol=0)
    if variant == "delete":  # deleting them removes all the evidence
        torch.testing.assert_close(result.rewards, torch.zeros(2, 1), atol=0.05, rtol=0)


def test_channel_result_shape_is_n_by_k_by_c():
    model = TinyConvNet()
    result = extremal_perturbation(
        model,
        _images(3),
        [0, 1, 2],
        [0.25, 0.5],
        layer="features.2",
        max_iter=4,
        progress=False,
        channel_baseline="mean",
    )
    assert result.masks.shape == (3, 2, 8)
    assert result.history["reward"].shape == (3, 2, 4)


# --------------------------------------------------------------------------- layer grid


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["preserve", "delete"])
def test_spatial_attribution_at_a_layer_finds_the_planted_box(variant):
    x = _images(2, size=32)
    box = torch.zeros(16, 16, dtype=torch.bool)
    top, left, height, width = BOX
    box[top : top + height, left : left + width] = True
    result = extremal_perturbation(
        LayerBoxNet(),
        x,
        0,
        [box.sum().item() / 256],
        layer="features",
        kind="layer-spatial",
        variant=variant,
        layer_step=1,
        layer_sigma=1.5,
        max_iter=300,
        progress=False,
    )
    masks = result.masks[:, 0]
    assert masks.shape == (2, 16, 16)
    inside = (masks * box).sum((1, 2)) / masks.sum((1, 2))
    assert (inside > 0.8).all(), inside


def test_mask_kinds_are_the_config_vocabulary():
    from lightning_extremal.api.extremal import MASK_KINDS
    from lightning_extremal.modules.image_masks import ExtremalPerturbationModule
    from lightning_extremal.modules.layer_masks import (
        ChannelPerturbationModule,
        LayerMaskModule,
        LayerSpatialModule,
    )

    kinds = [ExtremalPerturbationModule, ChannelPerturbationModule, LayerSpatialModule]
    assert [m.mask_kind for m in kinds] == list(MASK_KINDS)
    assert LayerMaskModule.mask_kind != "input"  # a new layer game is never drawn as an image
