"""What a layer's dimensions mean (ops/layer_layout): detection only where one reading fits,
declared layouts, and exact conversions to the canonical forms and back."""

from __future__ import annotations

import pytest
import torch

from lightning_extremal.config.schema import LAYER_LAYOUTS
from lightning_extremal.ops.layer_layout import LAYOUTS, LayerLayout, resolve_layout
from tests.helpers import TokenNet, small_vit


def test_the_config_and_ops_name_the_same_layouts():
    assert LAYER_LAYOUTS == LAYOUTS


@pytest.mark.parametrize(
    ("shape", "image", "expected"),
    [
        ((1, 512, 7, 7), (224, 224), LayerLayout("nchw", 512, (7, 7))),  # ResNet layer4
        ((2, 384, 14, 14), (224, 224), LayerLayout("nchw", 384, (14, 14))),  # ConvNeXt
        ((1, 64, 112, 160), (224, 320), LayerLayout("nchw", 64, (112, 160))),  # non-square
        ((1, 512, 1, 1), (224, 224), LayerLayout("nchw", 512, (1, 1))),  # pooled
        ((1, 14, 14, 384), (224, 224), LayerLayout("nhwc", 384, (14, 14))),  # Swin-T stage 3
        ((1, 10, 14, 384), (160, 224), LayerLayout("nhwc", 384, (10, 14))),
        ((1, 197, 768), (224, 224), LayerLayout("ntc", 768, (14, 14), 1)),  # ViT-B/16
        ((1, 201, 768), (224, 224), LayerLayout("ntc", 768, (14, 14), 5)),  # + 4 registers
        ((1, 49, 96), (224, 224), LayerLayout("ntc", 96, (7, 7), 0)),  # no class token
        ((3, 1000), (224, 224), LayerLayout("nchw", 1000, None)),  # logits-like vectors
    ],
)
def test_auto_reads_each_common_shape_one_way(shape, image, expected):
    assert resolve_layout(shape, image, "x") == expected


def test_an_n_c_h_w_shape_whose_c_is_also_a_grid_side_is_an_error_naming_the_options():
    with pytest.raises(
        ValueError, match=r"reads both as N×C×H×W .* set layer_layout to 'nchw' or 'nhwc'"
    ):
        resolve_layout((1, 64, 64, 64), (256, 256), "layer1")
    assert resolve_layout((1, 64, 64, 64), (256, 256), "layer1", "nchw").kind == "nchw"
    assert resolve_layout((1, 64, 64, 64), (256, 256), "layer1", "nhwc").kind == "nhwc"


def test_tokens_that_read_two_ways_or_none_are_errors_until_the_grid_is_given():
    with pytest.raises(ValueError, match=r"read as 0 extra \+ 3×3, 5 extra \+ 2×2; set layer_grid"):
        resolve_layout((1, 9, 8), (32, 32), "t")
    assert resolve_layout((1, 9, 8), (32, 32), "t", extra_tokens=5).grid == (2, 2)
    with pytest.raises(ValueError, match="does not read as tokens"):
        resolve_layout((1, 300, 16), (224, 224), "t")  # no square in 292…300
    given = resolve_layout((1, 100, 8), (64, 64), "t", "ntc", [11, 9], 1)  # declared wins
    assert given == LayerLayout("ntc", 8, (11, 9), 1)
    with pytest.raises(ValueError, match="layer_grid"):
        resolve_layout((1, 100, 8), (64, 64), "t", "ntc", [10, 10], 1)  # 101 ≠ 100 tokens


def test_a_declared_layout_that_does_not_fit_the_shape_is_an_error():
    with pytest.raises(ValueError, match="layer_layout='nhwc' needs N×H×W×C"):
        resolve_layout((1, 197, 768), (224, 224), "x", "nhwc")
    with pytest.raises(ValueError, match="layer_layout='ntc' needs N×T×C"):
        resolve_layout((1, 512, 7, 7), (224, 224), "x", "ntc")
    with pytest.raises(ValueError, match=r"layer_layout must be one of \['auto'"):
        resolve_layout((1, 512, 7, 7), (224, 224), "x", "nwhc")
    with pytest.raises(ValueError, match=r"layer_grid=\[8, 8\] does not match its grid \(7, 7\)"):
        resolve_layout((1, 512, 7, 7), (224, 224), "x", "nchw", [8, 8])


def test_the_model_says_its_patch_grid_also_inside_a_wrapper():
    vit = small_vit()
    wrapped = torch.nn.Sequential(vit)
    layer = "0.encoder.layers.encoder_layer_1"
    # 17 tokens at 32 px: the model's 8-px patches make it 1 + 4×4
    assert resolve_layout((1, 17, 24), (32, 32), layer, model=wrapped) == LayerLayout(
        "ntc", 24, (4, 4), 1
    )
    # the token count alone would not decide at this size (1 + 4×4, or 8 + 3×3)
    with pytest.raises(ValueError, match="the tokens read as"):
        resolve_layout((1, 17, 24), (32, 32), layer)


@pytest.mark.parametrize(
    "layout",
    [
        LayerLayout("nchw", 5, (3, 4)),
        LayerLayout("nhwc", 5, (3, 4)),
        LayerLayout("ntc", 5, (3, 4), 2),
    ],
)
def test_conversions_put_channels_first_and_come_back_exactly(layout):
    own = {
        "nchw": (2, 5, 3, 4),
        "nhwc": (2, 3, 4, 5),
        "ntc": (2, 14, 5),
    }[layout.kind]
    activation = torch.randn(own)
    canonical = layout.channels_first(activation)
    assert canonical.shape[:2] == (2, 5)
    assert torch.equal(layout.channels_back(canonical), activation)
    grid, extra = layout.split_grid(activation)
    assert grid.shape == (2, 5, 3, 4) and extra.shape == (2, 5, layout.extra_tokens)
    assert torch.equal(layout.join_grid(grid, extra), activation)
    # the grid is the image's: channel c of cell (i, j) is the feature where it belongs
    if layout.kind == "nhwc":
        assert torch.equal(grid[1, 4, 2, 3], activation[1, 2, 3, 4])
    if layout.kind == "ntc":  # 2 extra tokens, then row-major cells: (2, 3) is token 2 + 11
        assert torch.equal(grid[1, 4, 2, 3], activation[1, 13, 4])
        assert torch.equal(extra[1, 4], activation[1, :2, 4])


def test_token_net_layers_resolve():
    x = torch.rand(1, 3, 32, 32)
    for layout, expected in (
        ("ntc", LayerLayout("ntc", 12, (8, 8), 1)),
        ("nhwc", LayerLayout("nhwc", 12, (8, 8))),
    ):
        model = TokenNet(layout)
        from lightning_extremal.ops.layers import layer_activation

        shape = layer_activation(model, "tokens", x).shape
        assert resolve_layout(shape, (32, 32), "tokens", model=model) == expected
