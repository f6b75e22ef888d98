"""Ground truth given as a folder of mask files, and the object of one (image, target) pair."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from .transforms import fit_mask


def load_ground_truth(
    folder: str, ids: Sequence[str], size: int | None, crop: bool
) -> list[list[torch.Tensor] | None]:
    """Per image, its object mask from ``folder/<image id>.png`` (nonzero = object), resized
    like the image (:func:`~.transforms.fit_mask`), or None when the image has no file.

    Sources with built-in ground truth (demo, synthetic, VOC, COCO) give it through
    :meth:`~.sources.ImageSource.truth` instead.
    """
    path = Path(folder)
    if not path.is_dir():
        raise ValueError(
            f"data.ground_truth must be a folder of <image id>.png masks; got {folder!r}"
        )
    return [_read_mask(path / f"{image_id}.png", size, crop) for image_id in ids]


def _read_mask(path: Path, size: int | None, crop: bool) -> list[torch.Tensor] | None:
    if not path.is_file():
        return None
    with Image.open(path) as png:
        pixels = torch.frombuffer(bytearray(png.convert("L").tobytes()), dtype=torch.uint8)
        mask = pixels.view(png.height, png.width) > 0
    return [fit_mask(mask, size, crop)]


def pair_truth(
    objects: list[torch.Tensor] | None, labels: Sequence[int] | None, target: int
) -> torch.Tensor | None:
    """The ground truth of one (image, target) pair: the object of that class when the image's
    labels name it, else the union of the image's objects (e.g. a wrong top-1 class)."""
    if not objects:
        return None
    if labels is not None and target in labels and len(labels) == len(objects):
        return objects[list(labels).index(target)]
    return torch.stack(objects).any(0)
