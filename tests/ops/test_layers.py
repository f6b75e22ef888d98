"""Layer access by name and the forward hooks (ops/layers): nearest names, copies of
activations, shared modules refused, hooks removed after success and after an exception."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from lightning_extremal import extremal_perturbation, feature_inversion
from lightning_extremal.ops.frozen import hook_counts
from lightning_extremal.ops.layers import (
    default_layer,
    get_layer,
    layer_activation,
    layer_calls,
    replaced_output,
)
from lightning_extremal.ops.saliency import grad_cam
from tests.helpers import ChannelNet, SharedActivationNet, TinyConvNet, small_vit
from tests.helpers import random_images as _images


class Boom(Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= 2:
            raise RuntimeError("boom during training")


def test_wrong_layer_name_lists_nearest_names():
    model = TinyConvNet()
    with pytest.raises(ValueError, match=r"no layer 'featurs\.2'.*features\.2"):
        get_layer(model, "featurs.2")
    with pytest.raises(ValueError, match=r"no layer 'layer3'.*nearest valid names: features"):
        extremal_perturbation(model, _images(1), 0, [0.5], layer="layer3", progress=False)
    with pytest.raises(ValueError, match="kind must be one of"):
        extremal_perturbation(model, _images(1), 0, [0.5], layer="features.2", kind="pixels")
    with pytest.raises(ValueError, match="kind='channel' needs layer=None for input masks"):
        extremal_perturbation(model, _images(1), 0, [0.5], kind="channel")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['over'\]"):  # kind= only
        extremal_perturbation(model, _images(1), 0, [0.5], layer="features.2", over="space")


def test_layer_activation_is_a_copy_and_default_layer_is_last_feature_map():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))
    x = _images(2)
    before_relu = layer_activation(model, "0", x)
    assert (before_relu < 0).any()  # the in-place ReLU after the layer did not touch the copy
    assert default_layer(model, x) == "1"  # the pool's 1×1 output is not a spatial map
    assert default_layer(TinyConvNet(), x) == "features"


def test_a_layer_that_runs_twice_is_refused():
    class SharedReLU(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.act(self.conv(x)) - 1).mean((2, 3))

    model, x = SharedReLU(), _images(2)
    with pytest.raises(ValueError, match="'act' runs 2 times per forward pass"):
        extremal_perturbation(model, x, 0, [0.5], layer="act", max_iter=2, progress=False)
    replacement = layer_activation(model, "act", x)
    with pytest.raises(ValueError, match="more than once"):
        with replaced_output(model, "act", replacement):
            model(x)
    assert sum(hook_counts(model).values()) == 0


def test_hooks_removed_after_success_and_after_an_exception():
    model, x = ChannelNet(), _images(2)
    before = hook_counts(model)
    extremal_perturbation(model, x, 0, [2], layer="act", max_iter=3, progress=False)
    assert hook_counts(model) == before
    with pytest.raises(RuntimeError, match="boom"):
        extremal_perturbation(
            model, x, 0, [2], layer="act", max_iter=10, progress=False, callbacks=[Boom()]
        )
    assert hook_counts(model) == before
    with pytest.raises(RuntimeError, match="boom"):
        feature_inversion(
            model,
            "act",
            layer_activation(model, "act", x),
            size=16,
            max_iter=10,
            progress=False,
            callbacks=[Boom()],
        )
    assert hook_counts(model) == before
    assert all(p.requires_grad for p in model.parameters()) and model.training


def _torchvision(name: str, **options) -> nn.Module:
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.get_model(name, weights=None, **options).eval()


# One architecture family a row: (model, input side, the layer the warm start must choose).
FAMILIES = {
    "resnet": (lambda: _torchvision("resnet18"), 64, "layer4"),
    "vgg": (lambda: _torchvision("vgg11"), 64, "avgpool"),
    "mobilenet": (lambda: _torchvision("mobilenet_v3_small"), 64, "features"),
    "densenet": (lambda: _torchvision("densenet121"), 64, "features"),
    # after the last block's input norm only the class token reaches the head
    "vit": (small_vit, 32, "encoder.layers.encoder_layer_1.ln_1"),
    # the last spatial module, ``act``, also runs at the stem
    "shared-activation": (SharedActivationNet, 32, "bn"),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_default_layer_runs_once_and_grad_cam_there_is_not_empty(family):
    make, side, expected = FAMILIES[family]
    model, x = make(), _images(2, side)
    layer = default_layer(model, x)
    assert layer == expected
    assert layer_calls(model, layer, x) == 1
    # random weights: a class may have no positive evidence (an all-zero map), not all of them
    maps = grad_cam(model, x.repeat(3, 1, 1, 1), torch.arange(6) % 3, layer).flatten(1)
    assert (maps.amax(1) > maps.amin(1) + 1e-6 * maps.amax()).any()  # some map is not flat


def test_default_layer_refuses_a_model_whose_spatial_layers_all_run_twice():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            return self.conv(self.conv(x)).mean((2, 3))

    with pytest.raises(ValueError, match=r"runs more than once.*'conv', 2 times"):
        default_layer(Twice(), _images(1, 16))


def test_grad_cam_survives_an_in_place_layer_after_it():
    model = _torchvision("densenet121")  # F.relu(features, inplace=True) after ``features``
    maps = grad_cam(model, _images(1, 64), torch.tensor([0]), "features")
    assert maps.shape == (1, 64, 64)
