"""How images and their object masks are brought to the size a model takes: one copy of each
resize rule, shared by every source and dataset."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
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


#: What transparent pixels are composited on before a model sees them (RGB, white).
ALPHA_BACKGROUND = (255, 255, 255)
#: PIL modes of 16-bit (and 32-bit integer) grayscale images, e.g. 16-bit PNGs.
WIDE_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
#: EXIF orientations that swap width and height (rotations by 90° / 270°, transposes).
SWAPPING_ORIENTATIONS = (5, 6, 7, 8)


def oriented_size(pil: Image.Image) -> tuple[int, int]:
    """(width, height) as the image is shown: its EXIF orientation applied."""
    width, height = pil.size
    orientation = pil.getexif().get(0x0112, 1)
    return (height, width) if orientation in SWAPPING_ORIENTATIONS else (width, height)


def pil_to_image(pil: Image.Image) -> torch.Tensor:
    """A PIL image as a 3×H×W float tensor in [0, 1] (RGB), decoded by what its pixels mean:
    the EXIF orientation applied; 16-bit grayscale scaled from 0…65535 (not clipped at 255);
    grayscale, palette, bilevel and CMYK converted to RGB; transparent pixels (RGBA, LA,
    palette or colour-key transparency) composited on white, with a warning naming the file."""
    name = getattr(pil, "filename", "") or "an image"
    pil = ImageOps.exif_transpose(pil)
    if pil.mode in WIDE_GRAY_MODES:
        gray = torch.from_numpy(np.asarray(pil, dtype=np.float32)) / 65535.0
        return gray.clamp(0, 1).expand(3, *gray.shape).clone()
    if pil.mode in ("RGBA", "LA", "PA") or "transparency" in pil.info:
        rgba = pil.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 255:
            warnings.warn(
                f"{name} has transparent pixels; they are composited on white",
                UserWarning,
                stacklevel=2,
            )
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        pil = Image.alpha_composite(background, rgba)
    return TF.to_dtype(TF.pil_to_tensor(pil.convert("RGB")), torch.float32, scale=True)


def read_image(path: Path) -> torch.Tensor:
    """An image file as a 3×H×W float tensor in [0, 1]."""
    with Image.open(path) as pil:
        return pil_to_image(pil)
