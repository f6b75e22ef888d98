"""Warm starts (modules/image_masks, ops/saliency): Grad-CAM on any layer layout, and masks that
start on the evidence it finds."""

from __future__ import annotations

import logging

import pytest
import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from lightning_extremal import extremal_perturbation
from lightning_extremal.ops.pointing import region_iou, top_area_region
from lightning_extremal.ops.saliency import grad_cam
from tests.helpers import BoxModel, SharedActivationNet, TinyConvNet, TokenNet, random_images

BOX = (16, 8, 10, 14)  # top, left, height, width in px of a 40×40 image (area 0.0875)


class BrightBoxNet(nn.Module):
    """``features`` (1×1 conv with positive weights + ReLU: brightness per pixel); class 0
    scores 10 × the mean feature inside ``BOX``, class 1 minus that (its evidence is negative
    everywhere: its Grad-CAM map, a ReLU of a negative sum, is empty)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU())
        with torch.no_grad():
            self.features[0].weight.fill_(0.25)
            self.features[0].bias.zero_()
        inside = torch.zeros(40, 40)
        top, left, height, width = BOX
        inside[top : top + height, left : left + width] = 1
        self.register_buffer("weights", inside / inside.sum())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = 10 * (self.features(x).mean(1) * self.weights).sum((1, 2))
        return torch.stack([score, -score], 1)


def _box_scene() -> torch.Tensor:
    """A dim textured image with the box bright: the evidence is where the pixels are."""
    x = 0.1 + 0.1 * random_images(1, 40, seed=3)
    top, left, height, width = BOX
    x[..., top : top + height, left : left + width] += 0.6
    return x


def _box() -> torch.Tensor:
    box = torch.zeros(40, 40, dtype=torch.bool)
    top, left, height, width = BOX
    box[top : top + height, left : left + width] = True
    return box


def test_grad_cam_equals_captums_on_a_cnn():
    model, x = TinyConvNet().eval(), random_images(3, 32)
    targets = torch.tensor([0, 2, 4])
    ours = grad_cam(model, x, targets, "features.2")
    attr = LayerGradCam(model, model.features[2]).attribute(
        x, target=targets, relu_attributions=True
    )
    theirs = LayerAttribution.interpolate(attr, (32, 32), "bilinear")[:, 0]
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
    assert (ours >= 0).all() and (ours > 0).any()


def test_grad_cam_reads_tokens_and_channels_last_maps_alike():
    x = random_images(2, 32)
    tokens = grad_cam(TokenNet("ntc"), x, torch.tensor([0, 0]), "tokens")
    channels_last = grad_cam(TokenNet("nhwc"), x, torch.tensor([0, 0]), "tokens")
    assert tokens.shape == (2, 32, 32)
    torch.testing.assert_close(tokens, channels_last, atol=1e-6, rtol=1e-5)


def test_the_warm_start_puts_the_masks_on_the_evidence_before_the_first_step():
    model, x = BrightBoxNet(), _box_scene()
    options = dict(max_iter=1, lr=1e-6, step=4, sigma=4.0, progress=False, jitter=False)
    warm = extremal_perturbation(model, x, 0, [0.0875], warm_start="grad_cam", **options)
    cold = extremal_perturbation(model, x, 0, [0.0875], warm_start="none", **options)
    box = _box()
    assert region_iou(top_area_region(warm.masks[0, 0], 0.0875), box) > 0.7
    assert region_iou(top_area_region(cold.masks[0, 0], 0.0875), box) < 0.3  # uniform: no place
    # the warm start already has the requested area; the uniform start keeps everything
    assert abs(warm.achieved_areas[0, 0] - 0.0875) < 0.05 and cold.achieved_areas[0, 0] > 0.9


def test_masks_whose_grad_cam_is_empty_keep_the_uniform_start():
    model, x = BrightBoxNet(), _box_scene()  # class 1: an empty Grad-CAM map
    options = dict(max_iter=2, step=4, sigma=4.0, progress=False)
    warm = extremal_perturbation(model, x, 1, [0.1], warm_start="grad_cam", **options)
    cold = extremal_perturbation(model, x, 1, [0.1], warm_start="none", **options)
    assert torch.equal(warm.masks, cold.masks)
    assert warm.start == "uniform"  # no pair took the warm start


def test_warm_start_options_are_checked_before_work():
    model, x = BrightBoxNet(), _box_scene()
    with pytest.raises(ValueError, match=r"warm_start must be one of \['none', 'grad_cam', 'auto'"):
        extremal_perturbation(model, x, 0, [0.1], warm_start="gradcam", progress=False)
    with pytest.raises(ValueError, match="the model has no layer 'featurs'"):
        extremal_perturbation(
            model, x, 0, [0.1], warm_start="grad_cam", warm_start_layer="featurs", progress=False
        )


def test_auto_warm_starts_where_the_model_has_a_spatial_layer_and_only_there():
    options = dict(max_iter=1, lr=1e-6, step=4, sigma=4.0, progress=False, jitter=False)
    x = _box_scene()
    auto = extremal_perturbation(BrightBoxNet(), x, 0, [0.0875], warm_start="auto", **options)
    warm = extremal_perturbation(BrightBoxNet(), x, 0, [0.0875], warm_start="grad_cam", **options)
    torch.testing.assert_close(auto.masks, warm.masks)
    assert auto.start == warm.start == "grad_cam:features"  # the result says so
    flat = BoxModel(40, BOX)  # no layers at all: nothing for Grad-CAM to read
    auto = extremal_perturbation(flat, x, 0, [0.0875], warm_start="auto", **options)
    none = extremal_perturbation(flat, x, 0, [0.0875], warm_start="none", **options)
    assert torch.equal(auto.masks, none.masks)
    assert auto.start == none.start == "uniform"
    with pytest.raises(ValueError, match="no layer with a spatial grid"):
        extremal_perturbation(flat, x, 0, [0.0875], warm_start="grad_cam", **options)


@pytest.fixture
def fresh_log(monkeypatch, caplog):
    """The warm start's once-per-process lines said again, captured at INFO."""
    from lightning_extremal.modules import image_masks

    monkeypatch.setattr(image_masks, "_SAID", set())
    caplog.set_level(logging.INFO, logger="lightning_extremal")
    return caplog


def test_auto_skips_a_shared_activation_says_its_layer_and_starts_at_the_area(fresh_log):
    model, x = SharedActivationNet(), random_images(1, 32, seed=1)
    maps = grad_cam(model, x.repeat(3, 1, 1, 1), torch.arange(3), "bn").flatten(1)
    target = int(maps.amax(1).argmax())  # a class with positive evidence
    options = dict(max_iter=1, lr=1e-6, step=4, sigma=4.0, progress=False, jitter=False)
    warm = extremal_perturbation(model, x, target, [0.1], warm_start="auto", **options)
    assert "warm start: Grad-CAM at layer 'bn'" in fresh_log.text
    assert abs(warm.achieved_areas[0, 0] - 0.1) < 0.05  # not the uniform start's ~1


def test_auto_says_why_the_start_is_uniform(fresh_log):
    x = _box_scene()
    options = dict(max_iter=1, step=4, sigma=4.0, progress=False)
    extremal_perturbation(BoxModel(40, BOX), x, 0, [0.0875], warm_start="auto", **options)
    records = [r for r in fresh_log.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in records] == [
        "warm start: uniform masks, no Grad-CAM (the model has no layer with a spatial grid "
        "(N×C×H×W, N×H×W×C or N×T×C tokens); name one with layer=…)"
    ]
