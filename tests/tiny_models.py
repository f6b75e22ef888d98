"""Tiny classifiers for tests (importable as ``tests.tiny_models:NAME`` by the CLI)."""

from __future__ import annotations

import torch
from torch import nn


class TinyConvNet(nn.Module):
    """A seeded 2-layer CNN: images N×3×H×W → 5 logits (global average pooled)."""

    def __init__(self, num_classes: int = 5, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, num_classes, 3, padding=1),
        )
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))
