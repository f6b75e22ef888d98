"""Checks of what a caller passes in (images, targets), run before any long work starts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def check_images(images: Any) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor N×C×H×W; got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(f"images must have 4 dims N×C×H×W; got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"images must be a float tensor; got dtype {images.dtype}")
    if images.shape[0] == 0:
        raise ValueError("images is empty (N = 0)")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or infinite values")


def resolve_targets(
    targets: Any, num_images: int, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(image_index, targets) pairs from an int, N ints, or N lists of ints (multi-label)."""
    if isinstance(targets, torch.Tensor):
        if targets.dim() > 1 or targets.is_floating_point():
            raise ValueError(
                f"targets tensor must be 1-D integer; got {targets.dtype} {tuple(targets.shape)}"
            )
        targets = targets.tolist()
    if isinstance(targets, bool) or targets is None:
        raise TypeError(
            f"targets must be an int, a sequence of N ints or of lists; got {targets!r}"
        )
    if isinstance(targets, int):
        targets = [targets] * num_images
    if not isinstance(targets, Sequence) or isinstance(targets, str):
        raise TypeError(
            f"targets must be an int, a sequence or a tensor; got {type(targets).__name__}"
        )
    if len(targets) != num_images:
        raise ValueError(f"got {len(targets)} targets for {num_images} images")
    index, classes = [], []
    for i, entry in enumerate(targets):
        entries = entry if isinstance(entry, Sequence) and not isinstance(entry, str) else [entry]
        if len(entries) == 0:
            raise ValueError(f"image {i} has an empty list of targets")
        for t in entries:
            t = t.item() if isinstance(t, torch.Tensor) else t
            if isinstance(t, bool) or not isinstance(t, int):
                raise TypeError(f"target {t!r} of image {i} is not an int")
            if not 0 <= t < num_classes:
                raise ValueError(f"target {t} of image {i} is out of range [0, {num_classes})")
            index.append(i)
            classes.append(t)
    return torch.tensor(index), torch.tensor(classes)
