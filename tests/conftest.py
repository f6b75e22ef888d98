"""Fixtures shared by every test folder (the hand-built models and scenes are in ``helpers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from lightning_extremal.data.synthetic import render_sample
from tests.helpers import NUM_IMAGES, make_tiny_classifier


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread: on a small shared machine two OpenMP threads competing with other
    processes made the mask optimisation ~10–15× slower than one thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def tiny_classifier() -> nn.Module:
    return make_tiny_classifier()


@pytest.fixture
def small_images() -> torch.Tensor:
    """Three 40×40 images in [0, 1]."""
    return torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> tuple[Path, Path]:
    """Two synthetic-shape images (48 px) and their ground-truth object masks."""
    root = tmp_path_factory.mktemp("shapes")
    (root / "images").mkdir()
    (root / "truth").mkdir()
    for i in range(NUM_IMAGES):
        sample = render_sample(i, size=48)
        pixels = (sample.image.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
        Image.fromarray(pixels).save(root / "images" / f"shape{i}.png")
        Image.fromarray(sample.masks.any(0).numpy().astype("uint8") * 255).save(
            root / "truth" / f"shape{i}.png"
        )
    return root / "images", root / "truth"
