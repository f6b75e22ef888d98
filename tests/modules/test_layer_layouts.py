"""Layer masks on transformer (N×T×C) and channels-last (N×H×W×C) activations mean what they
mean on a CNN: channels are features, the spatial mask lies on the patch grid (extra tokens
kept as they are). Planted networks with known answers, then shapes on torchvision's ViT,
Swin and ConvNeXt."""

from __future__ import annotations

import pytest
import torch
import torchvision

from lightning_extremal import activation_diff, extremal_perturbation
from tests.helpers import TOKEN_CELL, TOKEN_FEATURES, TokenNet, random_images

LAYOUTS = [("ntc", None), ("ntc", 4), ("nhwc", None)]  # tokens counted / model-said / Swin-like


@pytest.mark.slow
@pytest.mark.parametrize(("layout", "patch"), LAYOUTS)
@pytest.mark.parametrize("variant", ["preserve", "delete"])
def test_channel_masks_find_the_two_features_the_network_reads(layout, patch, variant):
    model = TokenNet(layout, patch)
    result = extremal_perturbation(
        model,
        random_images(2, 32),
        0,
        [2],
        layer="tokens",
        kind="channel",
        variant=variant,
        max_iter=200,
        progress=False,
    )
    masks = result.masks[:, 0]
    assert masks.shape == (2, 12)  # the 12 features, not the 65 tokens or the 8 rows
    good = torch.zeros(12, dtype=torch.bool)
    good[list(TOKEN_FEATURES)] = True
    assert (masks[:, good] > 0.99).all() and (masks[:, ~good] < 0.01).all()
    if variant == "delete":  # deleting them removes all of class 0's evidence
        torch.testing.assert_close(result.rewards, torch.zeros(2, 1), atol=0.05, rtol=0)


@pytest.mark.parametrize(("layout", "patch"), LAYOUTS)
def test_spatial_masks_lie_on_the_grid_cell_the_network_reads(layout, patch):
    model = TokenNet(layout, patch)
    x = random_images(2, 32)
    options = dict(layer="tokens", kind="layer-spatial", layer_step=1, layer_sigma=1.0)
    options.update(max_iter=150, progress=False)
    result = extremal_perturbation(model, x, 1, [0.05], variant="delete", **options)
    masks = result.masks[:, 0]
    assert masks.shape == (2, 8, 8)  # the patch grid
    peak = [divmod(int(m.argmax()), 8) for m in masks]
    assert peak == [TOKEN_CELL, TOKEN_CELL]
    # the deleted cell takes class 1's grid evidence; the class token's part is left whole
    # (the delete game's reward is minus the score of the deleted activation)
    with torch.no_grad():
        cls = 10 * model.class_token.mean()
    torch.testing.assert_close(-result.rewards[:, 0], cls.expand(2), atol=0.05 * cls, rtol=0)


def test_ambiguous_channels_last_shape_is_refused_until_declared():
    class Square(torch.nn.Module):  # N×8×8×8 from 32×32 images: N×C×H×W or N×H×W×C?
        def __init__(self):
            super().__init__()
            self.features = torch.nn.Conv2d(3, 8, 4, stride=4)

        def forward(self, x):
            return self.features(x).mean((2, 3))

    x = random_images(1, 32)
    with pytest.raises(ValueError, match="reads both as N×C×H×W .* 'nchw' or 'nhwc'"):
        extremal_perturbation(Square(), x, 0, [2], layer="features", max_iter=2, progress=False)
    result = extremal_perturbation(
        Square(), x, 0, [2], layer="features", layer_layout="nchw", max_iter=2, progress=False
    )
    assert result.masks.shape == (1, 1, 8)


@pytest.mark.parametrize("layout", ["ntc", "nhwc"])
def test_activation_diff_names_the_features_on_token_and_channels_last_layers(layout):
    model = TokenNet(layout)
    x = random_images(2, 32, seed=1)
    diff = activation_diff(
        model,
        "tokens",
        x,
        0,
        area=2,
        attribution={"max_iter": 150},
        inversion={"max_iter": 3},
        progress=False,
    )
    assert diff.channel_masks.shape == (2, 12)
    assert [sorted(t) for t in diff.top_channels] == [list(TOKEN_FEATURES)] * 2
    assert diff.full.shape == diff.attributed.shape == x.shape
    assert diff.comparisons[0].empty


TORCHVISION = [
    ("vit_b_16", "encoder.layers.encoder_layer_6", 768),
    ("swin_t", "features.5", 384),
    ("convnext_tiny", "features.5", 384),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "layer", "channels"), TORCHVISION)
def test_torchvision_transformers_and_convnext_give_feature_and_grid_masks(name, layer, channels):
    torch.manual_seed(0)
    model = torchvision.models.get_model(name).eval()
    if name.startswith("vit"):  # torchvision starts ViT's head at zero: scores ignore the input
        torch.nn.init.normal_(model.heads.head.weight, std=0.02)
    x = torch.rand(1, 3, 224, 224)
    for kind, shape in (("channel", (1, 1, channels)), ("layer-spatial", (1, 1, 14, 14))):
        result = extremal_perturbation(
            model, x, 0, [0.1], layer=layer, kind=kind, max_iter=2, progress=False
        )
        assert tuple(result.masks.shape) == shape, (name, kind)
        assert torch.isfinite(result.masks).all()
