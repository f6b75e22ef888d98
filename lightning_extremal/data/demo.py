"""The bundled demo: a small CNN trained on :mod:`lightning_extremal.synthetic` and its images.

``load_demo_classifier()`` returns the shipped :class:`DemoNet` (trained by
``python -m lightning_extremal.data.train_demo``, see ``assets/PROVENANCE.md``);
``demo_images()`` / ``demo_ground_truth()`` return the shipped demo images with their exact
ground-truth object masks, so attribution results can be checked against the truth.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from .synthetic import CLASSES

ASSETS = "assets"
CHECKPOINT_NAME = "demo_classifier.pt"
DEMO_IMAGES_DIR = "demo_images"
DEMO_INDEX_NAME = "index.json"

MIN_INPUT_SIDE = 32  # the network downsamples 16×; smaller inputs leave almost no feature map
STEM_KERNEL = 5
# (out_channels, conv_stride, max_pool) of each conv–BN–ReLU block, in order. Downsampling by
# max pooling (not only strided convs) is what lets the GAP classifier learn the shapes quickly.
BLOCK_SPECS: tuple[tuple[int, int, bool], ...] = (
    (32, 2, True),  # stem, 5×5: 128 → 64 → 32
    (64, 1, True),  # 32 → 16
    (96, 1, True),  # 16 → 8
    (128, 1, False),
    (128, 1, False),
)
# Inputs in [0, 1] are mapped to roughly zero mean, unit scale: (x − 0.5) / 0.25.
INPUT_CENTER = 0.5
INPUT_SCALE = 0.25


class ConvBlock(nn.Module):
    """Conv (no bias, ``stride``) → BatchNorm → ReLU [→ 2×2 max pool when ``pool``]."""

    def __init__(
        self, in_channels: int, out_channels: int, *, kernel: int, stride: int, pool: bool
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.bn(self.conv(x))))


class DemoNet(nn.Module):
    """Small all-convolutional classifier: conv blocks → global average pool → linear.

    Input N×3×H×W float in [0, 1] (H, W ≥ 32), output N×len(CLASSES) logits. Modules:
    ``features.block1`` … ``features.block5`` (each ``.conv``/``.bn``/``.relu``/``.pool``),
    ``pool`` (global average) and ``classifier``. The last feature map (``features.block5``,
    stride 16, 8×8 for 128 px inputs) keeps spatial evidence until the pooling, which suits
    attribution.
    """

    def __init__(self, num_classes: int = len(CLASSES)) -> None:
        super().__init__()
        self.features = nn.Sequential()
        in_channels = 3
        for k, (out_channels, stride, pool) in enumerate(BLOCK_SPECS, start=1):
            kernel = STEM_KERNEL if k == 1 else 3
            block = ConvBlock(in_channels, out_channels, kernel=kernel, stride=stride, pool=pool)
            self.features.add_module(f"block{k}", block)
            in_channels = out_channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an N×3×H×W batch, got shape {tuple(x.shape)}")
        if min(x.shape[-2:]) < MIN_INPUT_SIDE:
            raise ValueError(f"H and W must be >= {MIN_INPUT_SIDE}, got {tuple(x.shape[-2:])}")
        features = self.features((x - INPUT_CENTER) / INPUT_SCALE)
        return self.classifier(self.pool(features).flatten(1))


def _asset(*parts: str) -> Path:
    """Path of a file shipped in ``lightning_extremal/assets``."""
    return Path(str(resources.files("lightning_extremal").joinpath(ASSETS, *parts)))


def default_checkpoint_path() -> Path:
    """Where the shipped demo checkpoint lives."""
    return _asset(CHECKPOINT_NAME)


def load_checkpoint(path: str | Path | None = None) -> dict[str, Any]:
    """The checkpoint dict (``state_dict``, ``classes``, ``test_accuracy``, …), weights only."""
    path = default_checkpoint_path() if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no demo checkpoint at {path}")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path} is not a demo checkpoint (no 'state_dict')")
    classes = tuple(checkpoint.get("classes", ()))
    if classes != CLASSES:
        raise ValueError(f"{path} was trained for classes {classes}, expected {CLASSES}")
    return checkpoint


def load_demo_classifier(path: str | Path | None = None) -> DemoNet:
    """The trained :class:`DemoNet` from ``path`` (default: the shipped one), in eval mode."""
    model = DemoNet()
    model.load_state_dict(load_checkpoint(path)["state_dict"])
    return model.eval()


def demo_index(directory: str | Path | None = None) -> list[dict[str, Any]]:
    """Entries of the demo images' ``index.json`` (id, labels, class names, boxes, source, …)."""
    directory = _asset(DEMO_IMAGES_DIR) if directory is None else Path(directory)
    with open(directory / DEMO_INDEX_NAME, encoding="utf-8") as handle:
        return json.load(handle)["images"]


def _read_png(path: Path) -> np.ndarray:
    """A PNG file as a uint8 array (H×W×3 for RGB, H×W for masks)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("L" if image.mode in ("1", "L") else "RGB"))


def demo_images(
    directory: str | Path | None = None,
) -> tuple[torch.Tensor, list[str], list[tuple[int, ...]]]:
    """The shipped demo images: N×3×128×128 float in [0, 1], their ids, their label tuples."""
    directory = _asset(DEMO_IMAGES_DIR) if directory is None else Path(directory)
    entries = demo_index(directory)
    pixels = [_read_png(directory / entry["image"]) for entry in entries]
    images = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float() / 255.0
    return images, [entry["id"] for entry in entries], [tuple(e["labels"]) for e in entries]


def demo_ground_truth(directory: str | Path | None = None) -> list[torch.Tensor]:
    """Per demo image, its main objects' exact visible pixels: K×128×128 bool (label order)."""
    directory = _asset(DEMO_IMAGES_DIR) if directory is None else Path(directory)
    return [
        torch.from_numpy(np.stack([_read_png(directory / name) > 0 for name in entry["masks"]]))
        for entry in demo_index(directory)
    ]
