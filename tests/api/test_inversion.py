"""Feature inversion (api/inversion): the activation distance drops, shapes are checked."""

from __future__ import annotations

import pytest
import torch

from lightning_extremal import feature_inversion
from lightning_extremal.ops.inversion import activation_match, initial_images
from lightning_extremal.ops.layers import layer_activation
from tests.helpers import TinyConvNet, TokenNet
from tests.helpers import random_images as _images


def _inversion_models():
    from lightning_extremal.data.demo import default_checkpoint_path

    models = [pytest.param(TinyConvNet(), "features.2", 32, id="TinyConvNet")]
    demo = pytest.mark.skipif(
        not default_checkpoint_path().is_file(), reason="the demo checkpoint is not built yet"
    )
    models.append(
        pytest.param("demo", "features.block3", 128, id="demo", marks=[demo, pytest.mark.slow])
    )
    # a token layer (N×65×12: class token + 8×8 patches) and a channels-last one (N×8×8×12)
    models.append(pytest.param(TokenNet("ntc"), "tokens", 32, id="tokens"))
    models.append(pytest.param(TokenNet("nhwc"), "tokens", 32, id="channels-last"))
    return models


@pytest.mark.parametrize("model, layer, size", _inversion_models())
def test_inversion_reduces_the_activation_distance_tenfold(model, layer, size):
    if model == "demo":
        from lightning_extremal.data.demo import demo_images, load_demo_classifier

        model, x = load_demo_classifier(), demo_images()[0][:2]
    else:
        x = torch.nn.functional.interpolate(_images(2, size=8, seed=1), size=size, mode="bilinear")
    target = layer_activation(model, layer, x)
    init = initial_images(x.shape, seed=0)
    start = activation_match(layer_activation(model, layer, init), target)
    inverted = feature_inversion(model, layer, target, init=init, max_iter=150, progress=False)
    reached = activation_match(layer_activation(model, layer, inverted), target)
    assert inverted.shape == x.shape
    assert (reached * 10 < start).all(), (start, reached)


def test_inversion_checks_the_activation_shape():
    with pytest.raises(ValueError, match=r"activations have shape \(8, 9, 9\).*\(8, 16, 16\)"):
        feature_inversion(TinyConvNet(), "features.2", torch.zeros(1, 8, 9, 9), size=16)
