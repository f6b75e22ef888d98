"""Ground-truth object masks of the images a run explains: the demo's, or a folder of PNGs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from .demo import demo_ground_truth
from .sources import resize_image


def _fit(mask: torch.Tensor, size: int | None, crop: bool) -> torch.Tensor:
    """Resize an H×W bool mask the way :func:`lightning_extremal.images.resize_image` resizes."""
    return resize_image(mask.float().unsqueeze(0), size, crop)[0] > 0.5


def load_ground_truth(
    source: str, ground_truth: str | None, ids: Sequence[str], size: int | None, crop: bool
) -> list[list[torch.Tensor] | None]:
    """Per image, its object masks (each H×W bool, at the loaded image's size) or None.

    ``ground_truth`` is a folder of ``<image id>.png`` files (nonzero = object); without it,
    ``source == "demo"`` uses the demo images' exact object masks (one per label, in label
    order). Images without a mask file get None.
    """
    if ground_truth:
        from PIL import Image

        folder = Path(ground_truth)
        if not folder.is_dir():
            raise ValueError(
                f"data.ground_truth must be a folder of <image id>.png masks; got {ground_truth!r}"
            )
        out: list[list[torch.Tensor] | None] = []
        for image_id in ids:
            path = folder / f"{image_id}.png"
            if not path.is_file():
                out.append(None)
                continue
            with Image.open(path) as png:
                pixels = torch.frombuffer(bytearray(png.convert("L").tobytes()), dtype=torch.uint8)
                mask = pixels.view(png.height, png.width) > 0
            out.append([_fit(mask, size, crop)])
        return out
    if source == "demo":
        return [[_fit(m, size, crop) for m in masks] for masks in demo_ground_truth()]
    return [None] * len(ids)


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
