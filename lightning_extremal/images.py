"""Images to explain: the bundled demo set, a folder, or a glob pattern of files."""

from __future__ import annotations

import glob
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms.v2 import functional as TF

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass
class ImageSet:
    """Images as float tensors C×H×W in [0, 1] with their ids; unreadable files are listed."""

    images: list[torch.Tensor]
    ids: list[str]
    labels: list[tuple[int, ...]] | None = None
    skipped: list[dict[str, str]] = field(default_factory=list)


def list_image_files(source: str) -> list[Path]:
    """Image files of a folder (sorted) or of a glob pattern."""
    path = Path(source)
    if path.is_dir():
        files = [p for p in sorted(path.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    elif path.is_file():
        files = [path]
    else:
        files = [Path(p) for p in sorted(glob.glob(source, recursive=True))]
        files = [p for p in files if p.is_file()]
    if not files:
        raise ValueError(
            f"no images found at {source!r}: give 'demo', a folder of images or a glob pattern "
            f"(suffixes {', '.join(IMAGE_SUFFIXES)})"
        )
    return files


def resize_image(image: torch.Tensor, size: int | None, crop: bool) -> torch.Tensor:
    """Resize so the shorter side is ``size`` (aspect kept), then centre-crop if ``crop``."""
    if size is None:
        return image
    image = TF.resize(image, [size], antialias=True)
    return TF.center_crop(image, [size, size]) if crop else image


def load_images(source: str, size: int | None = None, crop: bool = True) -> ImageSet:
    """Load ``source`` (``demo``, folder, glob). Unreadable files are warned about and skipped."""
    if source == "demo":
        from .demo import demo_images

        images, ids, labels = demo_images()
        return ImageSet([resize_image(x, size, crop) for x in images], ids, list(labels))
    result = ImageSet([], [])
    for path in list_image_files(source):
        try:
            with Image.open(path) as pil:
                image = TF.to_dtype(TF.pil_to_tensor(pil.convert("RGB")), torch.float32, scale=True)
        except (UnidentifiedImageError, OSError, ValueError) as error:
            warnings.warn(f"skipping unreadable image {path}: {error}", stacklevel=2)
            result.skipped.append({"path": str(path), "error": str(error)})
            continue
        result.images.append(resize_image(image, size, crop))
        result.ids.append(path.stem)
    if not result.images:
        raise ValueError(f"none of the images at {source!r} could be read: {result.skipped}")
    return result
