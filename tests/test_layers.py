"""Intermediate layers: layer access by name, channel and layer-grid attribution, feature
inversion, activation diffing, and the CLI kinds — on tiny hand-built networks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from PIL import Image
from torch import nn

from lightning_extremal import activation_diff, extremal_perturbation, feature_inversion
from lightning_extremal.cli import main
from lightning_extremal.config import MethodConfig, compose, validate_method
from lightning_extremal.ops.frozen import hook_counts
from lightning_extremal.ops.inversion import activation_match, initial_images
from lightning_extremal.ops.layer_masks import channel_counts
from lightning_extremal.ops.layers import (
    default_layer,
    get_layer,
    layer_activation,
    replaced_output,
)
from tests.tiny_models import TinyConvNet

GOOD = (2, 5)  # the channels ChannelNet's class 0 reads
BOX = (4, 7, 5, 6)  # top, left, height, width of LayerBoxNet's box, in layer cells
TINY_MODEL = "tests.tiny_models:TinyConvNet"


class ChannelNet(nn.Module):
    """conv (positive weights) → ReLU (``act``, 8 channels) → spatial mean → linear.
    Class 0 scores 10 × the sum of the mean activations of channels ``GOOD``; class 1 is 0."""

    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, channels, 3, padding=1)
        self.act = nn.ReLU()
        self.head = nn.Linear(channels, 2, bias=False)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.body.weight.copy_(
                0.1 + 0.2 * torch.rand(self.body.weight.shape, generator=generator)
            )
            self.body.bias.zero_()
            self.head.weight.zero_()
            self.head.weight[0, list(GOOD)] = 10.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.body(x)).mean((2, 3)))


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


def _images(count: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(seed))


class Boom(Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= 2:
            raise RuntimeError("boom during training")


# --------------------------------------------------------------------------- layer access


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
    with pytest.warns(DeprecationWarning, match="over='space' is now kind='layer-spatial'"):
        with pytest.raises(ValueError, match="no layer 'nope'"):
            extremal_perturbation(model, _images(1), 0, [0.5], layer="nope", over="space")


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


# --------------------------------------------------------------------------- channels


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


def test_image_mask_callbacks_skip_channel_and_grid_masks(tmp_path):
    from lightning_extremal.callbacks import ConvergenceMonitor, FinalOverlays, MaskEvolution

    for kind in ("channel", "layer-spatial"):
        evolution = MaskEvolution(every_n_steps=2, out_dir=tmp_path / kind)
        overlays = FinalOverlays(out_dir=tmp_path / kind)
        monitor = ConvergenceMonitor()
        extremal_perturbation(
            TinyConvNet(),
            _images(2),
            0,
            [0.5],
            layer="features.2",
            kind=kind,
            max_iter=4,
            progress=False,
            callbacks=[evolution, overlays, monitor],
        )
        assert not evolution.active and not evolution.gifs and overlays.rows == []
        assert monitor.steps == 4
    assert not list(tmp_path.rglob("*.png")) and not list(tmp_path.rglob("*.gif"))


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


def test_channel_areas_are_fractions_or_counts():
    assert channel_counts([0.1, 0.25, 3, 8.0], 8) == [1, 2, 3, 8]
    with pytest.raises(ValueError, match="layer has 8 channels"):
        channel_counts([9], 8)
    with pytest.raises(ValueError, match="channel counts"):
        validate_method(MethodConfig(kind="channel", areas=[0.1, 3]))
    with pytest.raises(ValueError, match=r"open interval \(0, 1\); got 3"):
        validate_method(MethodConfig(kind="input", areas=[3]))
    with pytest.raises(ValueError, match="kind must be one of.*layer-spatial"):
        validate_method(MethodConfig(kind="neurons"))
    with pytest.raises(ValueError, match="layer='layer3' is set but kind is 'input'"):
        validate_method(MethodConfig(layer="layer3"))


# --------------------------------------------------------------------------- layer grid


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


# --------------------------------------------------------------------------- inversion


def _inversion_models():
    from lightning_extremal.data.demo import default_checkpoint_path

    models = [pytest.param(TinyConvNet(), "features.2", 32, id="TinyConvNet")]
    demo = pytest.mark.skipif(
        not default_checkpoint_path().is_file(), reason="the demo checkpoint is not built yet"
    )
    models.append(pytest.param("demo", "features.block3", 128, id="demo", marks=demo))
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


# --------------------------------------------------------------------------- diffing


def test_activation_diff_of_an_image_with_itself_is_empty():
    model, x = ChannelNet(), _images(1)
    diff = activation_diff(
        model,
        "act",
        torch.cat([x, x]),
        0,
        area=2,
        progress=False,
        attribution={"max_iter": 100},
        inversion={"max_iter": 5},
    )
    assert diff.top_channels == [[2, 5], [2, 5]] or diff.top_channels == [[5, 2], [5, 2]]
    (same,) = diff.comparisons
    assert same.empty and same.shared == [2, 5]
    assert same.first_only is None and same.second_only is None
    assert diff.full.shape == diff.attributed.shape == diff.difference.shape == (2, 3, 16, 16)


def test_activation_diff_of_two_images_names_the_differing_channels():
    model = TinyConvNet()
    x = _images(2)
    masks = torch.zeros(2, 8)
    masks[0, [0, 1, 2]] = 1
    masks[1, [2, 3, 4]] = 1
    diff = activation_diff(
        model,
        "features.2",
        x,
        [0, 0],
        area=3,
        channel_masks=masks,
        progress=False,
        inversion={"max_iter": 3},
    )
    (pair,) = diff.comparisons
    assert (pair.shared, pair.only_first, pair.only_second) == ([2], [0, 1], [3, 4])
    assert pair.first_only.shape == pair.second_only.shape == (3, 16, 16)


# --------------------------------------------------------------------------- config and CLI


def test_compose_method_kind():
    cfg = compose(["method=channel", "layer=features.block5", "areas=[5]"])
    assert (cfg.method.kind, cfg.method.layer, cfg.method.areas) == (
        "channel",
        "features.block5",
        [5.0],
    )
    assert compose(["method=reference", "kind=diff"]).method.kind == "diff"
    with pytest.raises(ValueError, match="no such method config.*method kind.*layer-spatial"):
        compose(["method=neurons"])


def _write_images(folder: Path, count: int, size: int = 32) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray((rng.random((size, size, 3)) * 255).astype("uint8")).save(
            folder / f"img{i}.png"
        )


@pytest.mark.slow
def test_cli_layer_kinds_write_their_figures(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    data = tmp_path / "images"
    _write_images(data, 2)
    common = [
        f"model={TINY_MODEL}",
        f"data={data}",
        "data.size=32",
        "logger=none",
        "max_iter=20",
        "invert_iter=10",
        "trainer.progress=false",
        "areas=[0.25]",
    ]
    out = tmp_path / "diff"
    assert main(["run", "method=diff", "layer=features.2", f"output_dir={out}", *common]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    rows = [r for r in summary["results"] if "top_channels" in r]
    assert summary["layer"] == "features.2" and len(rows) == 2
    assert all(len(r["top_channels"]) == 2 for r in rows)
    assert "img0" in printed and "top channels" in printed
    for name in ("channels/img0.png", "diff/img0.png", "diff/img1.png"):
        assert (out / name).is_file(), name
    assert (out / "comparisons" / "img0_vs_img1.png").is_file()
    assert torch.load(out / "masks.pt", weights_only=False)["masks"].shape == (2, 1, 8)

    out = tmp_path / "space"
    assert main(["run", "method=layer-spatial", f"output_dir={out}", *common]) == 0
    masks = torch.load(out / "masks.pt", weights_only=False)["masks"]
    assert masks.shape == (2, 1, 32, 32)  # default layer: TinyConvNet's last feature map
    assert (out / "overlays" / "img1.png").is_file()

    out = tmp_path / "invert"
    assert main(["run", "method=invert", "layer=features.0", f"output_dir={out}", *common]) == 0
    assert (out / "inversions" / "img0.png").is_file()
    rows = json.loads((out / "summary.json").read_text())["results"]
    assert [r["image"] for r in rows] == ["img0", "img1"]


@pytest.mark.slow
def test_cli_layer_run_resumes_chunk_by_chunk(tmp_path, monkeypatch):
    """A layer run (channels, one image per chunk) killed after its first chunk resumes: the
    finished chunk file is reused untouched, the missing one is computed, and the final masks
    equal an uninterrupted run's. Changing an inversion setting recomputes every chunk."""
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    data = tmp_path / "images"
    _write_images(data, 2)
    out = tmp_path / "channels"
    args = [
        "run",
        "method=channel",
        "layer=features.2",
        f"model={TINY_MODEL}",
        f"data={data}",
        "data.size=32",
        "data.batch_size=1",
        "logger=none",
        "max_iter=15",
        "invert_iter=5",
        "trainer.progress=false",
        "areas=[0.25]",
        f"output_dir={out}",
    ]
    assert main(args) == 0
    whole = torch.load(out / "masks.pt", weights_only=False)
    first, second = out / "chunks" / "chunk-00000.pt", out / "chunks" / "chunk-00001.pt"
    assert first.is_file() and second.is_file()
    stamp = first.stat().st_mtime_ns
    second.unlink()  # as if the run had been killed after the first chunk
    (out / "masks.pt").unlink()
    assert main(args) == 0
    assert first.stat().st_mtime_ns == stamp  # reused, not recomputed
    assert second.is_file()
    resumed = torch.load(out / "masks.pt", weights_only=False)
    assert resumed["ids"] == whole["ids"] == ["img0", "img1"]
    assert torch.equal(resumed["masks"], whole["masks"])
    rows = json.loads((out / "summary.json").read_text())["results"]
    assert [r["image"] for r in rows if "top_channels" in r] == ["img0", "img1"]
    assert main([*args, "invert_iter=6"]) == 0  # another inversion: a different key
    assert first.stat().st_mtime_ns != stamp
