"""Small shared fixtures: a seeded tiny conv classifier and a planted-evidence box model."""

from __future__ import annotations

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread: on a small shared machine two OpenMP threads competing with other
    processes made the mask optimisation ~10–15× slower than one thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_tiny_classifier(num_classes: int = 4, seed: int = 0) -> nn.Module:
    """A seeded 3-channel conv classifier (with batch norm and dropout), images → N×classes."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, num_classes),
    ).eval()


@pytest.fixture
def tiny_classifier() -> nn.Module:
    return make_tiny_classifier()


@pytest.fixture
def small_images() -> torch.Tensor:
    """Three 40×40 images in [0, 1]."""
    return torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(0))


class BoxModel(nn.Module):
    """Class 0 scores 10 × the mean brightness inside a known box; class 1 scores 0."""

    def __init__(self, size: int, box: tuple[int, int, int, int]) -> None:
        super().__init__()
        top, left, height, width = box
        inside = torch.zeros(size, size)
        inside[top : top + height, left : left + width] = 1
        self.register_buffer("weights", inside / inside.sum())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = 10 * (x.mean(1) * self.weights).sum((1, 2))
        return torch.stack([score, torch.zeros_like(score)], 1)


def box_scene(size: int, box: tuple[int, int, int, int], seed: int = 0) -> torch.Tensor:
    """A bright (0.9–1) box on a dim textured (0.15–0.25) background, 1×3×size×size."""
    g = torch.Generator().manual_seed(seed)
    x = 0.15 + 0.1 * torch.rand(1, 3, size, size, generator=g)
    top, left, height, width = box
    x[..., top : top + height, left : left + width] = 0.9 + 0.1 * torch.rand(
        1, 3, height, width, generator=g
    )
    return x
