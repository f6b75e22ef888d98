"""How images and their object masks are brought to the size a model takes: one copy of each
resize rule, shared by every source and dataset."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF


def resized_shape(height: int, width: int, size: int | None, crop: bool) -> tuple[int, int]:
    """(H, W) after :func:`resize_image` (torchvision's rule: the long side is truncated)."""
    if size is None:
        return height, width
    if crop:
        return size, size
    if height <= width:
        return size, int(size * width / height)
    return int(size * height / width), size


def resize_image(image: torch.Tensor, size: int | None, crop: bool) -> torch.Tensor:
    """Resize so the shorter side is ``size`` (aspect kept), then centre-crop if ``crop``."""
    if size is None:
        return image
    image = TF.resize(image, [size], antialias=True)
    return TF.center_crop(image, [size, size]) if crop else image


def fit_mask(mask: torch.Tensor, size: int | None, crop: bool) -> torch.Tensor:
    """Resize an H×W bool mask exactly as :func:`resize_image` resizes its image."""
    return resize_image(mask.float().unsqueeze(0), size, crop)[0] > 0.5


def pil_to_image(pil: Image.Image) -> torch.Tensor:
    """A PIL image as a 3×H×W float tensor in [0, 1] (RGB)."""
    return TF.to_dtype(TF.pil_to_tensor(pil.convert("RGB")), torch.float32, scale=True)


def read_image(path: Path) -> torch.Tensor:
    """An image file as a 3×H×W float tensor in [0, 1]."""
    with Image.open(path) as pil:
        return pil_to_image(pil)
