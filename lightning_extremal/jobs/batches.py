"""How a job walks its images: the output folder, chunks of one image shape, the classes to
explain per image and the names of the (image, target) pairs."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import torch

from ..config import RunConfig
from ..data.sources import ImageSource
from ..engine.classifier import predicted_classes


def output_dir(cfg: RunConfig) -> Path:
    if cfg.output_dir:
        return Path(cfg.output_dir)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("outputs") / f"run-{stamp}"


def targets_for(
    cfg_targets: Any, images: ImageSource, model, index: list[int], batch: torch.Tensor
) -> list[list[int]]:
    """Per image, the classes to explain: top1, the dataset's labels, a class id or a list."""
    if cfg_targets == "top1":
        return [[t] for t in predicted_classes(model, batch).tolist()]
    if cfg_targets == "labels":
        if images.labels is None:
            raise ValueError("data.targets=labels needs images with labels (e.g. data=demo)")
        return [list(images.labels[i]) for i in index]
    if isinstance(cfg_targets, int) and not isinstance(cfg_targets, bool):
        return [[cfg_targets] for _ in index]
    if isinstance(cfg_targets, (list, tuple)) and all(isinstance(t, int) for t in cfg_targets):
        return [list(cfg_targets) for _ in index]
    raise ValueError(
        "data.targets must be 'top1', 'labels', a class id or a list of class ids; "
        f"got {cfg_targets!r}"
    )


def chunk_indices(images: ImageSource, batch_size: int) -> list[list[int]]:
    """Indices of images in chunks of ``batch_size``, each chunk of one image shape."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, shape in enumerate(images.shapes):
        by_shape.setdefault(tuple(shape), []).append(i)
    return [
        idx[s : s + batch_size] for idx in by_shape.values() for s in range(0, len(idx), batch_size)
    ]


def pair_names(ids: list[str], targets: list[list[int]]) -> list[str]:
    """One name per (image, target) pair in the API's pair order: the image id, plus the
    target when the image has several."""
    return [
        i if len(ts) == 1 else f"{i}_{t}" for i, ts in zip(ids, targets, strict=True) for t in ts
    ]
