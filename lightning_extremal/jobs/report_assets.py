"""The report's pictures within a size budget: small thumbnails embedded in the page (PNG or
JPEG, whichever is smaller, shrunk until they fit their share of the budget) and full-size
files in a folder beside the page, referenced by relative paths."""

from __future__ import annotations

import base64
import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

#: Pictures are shown about this many pixels on their longest side: small images are scaled
#: up by a whole factor, nearest-neighbour, so their pixels stay sharp.
DISPLAY_PIXELS = 256
#: Largest thumbnail side embedded in the page, before the budget shrinks it further.
THUMBNAIL_PIXELS = 256
#: Smallest thumbnail side the budget may shrink to.
MIN_THUMBNAIL_PIXELS = 16
#: What :meth:`AssetFolder.remove_stale` may delete.
PICTURE_SUFFIXES = (".png", ".gif", ".jpg")
#: JPEG quality of photo-like thumbnails (PNG is kept when it is smaller).
JPEG_QUALITY = 80


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def uri_bytes(size: int) -> int:
    """Length of the base64 data URI of ``size`` bytes (the page pays this, not ``size``)."""
    return 4 * ((size + 2) // 3) + len("data:image/jpeg;base64,")


def display_scale(height: int, width: int) -> int:
    """The whole factor that brings the longest side closest to :data:`DISPLAY_PIXELS` from
    below (1 for images at least that large)."""
    return max(1, DISPLAY_PIXELS // max(height, width))


def _pil(image: torch.Tensor):
    """C×H×W uint8 → PIL RGB image."""
    from PIL import Image

    return Image.fromarray(image.permute(1, 2, 0).contiguous().numpy()).convert("RGB")


def png_bytes(image: torch.Tensor, scale: int = 1) -> bytes:
    """C×H×W uint8 → PNG bytes, nearest-neighbour upscaled by the whole factor ``scale``."""
    from PIL import Image

    pil = _pil(image)
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _encoded(pil) -> tuple[bytes, str]:
    """The smaller of the PNG and the JPEG of ``pil``, with its MIME type."""
    png, jpeg = io.BytesIO(), io.BytesIO()
    pil.save(png, format="PNG", optimize=True)
    pil.save(jpeg, format="JPEG", quality=JPEG_QUALITY)
    if png.tell() <= jpeg.tell():
        return png.getvalue(), "image/png"
    return jpeg.getvalue(), "image/jpeg"


def thumbnail_uri(image: torch.Tensor, max_uri_bytes: int) -> str:
    """A data URI of ``image`` (C×H×W uint8) of at most ``max_uri_bytes`` characters: at its
    own size up to :data:`THUMBNAIL_PIXELS`, halved until it fits (never below
    :data:`MIN_THUMBNAIL_PIXELS`; what fits there is returned even if over)."""
    from PIL import Image

    pil = _pil(image)
    side = min(THUMBNAIL_PIXELS, max(pil.size))
    while True:
        scale = side / max(pil.size)
        small = pil
        if scale < 1:
            size = (max(1, round(pil.width * scale)), max(1, round(pil.height * scale)))
            small = pil.resize(size, Image.LANCZOS)
        data, mime = _encoded(small)
        if uri_bytes(len(data)) <= max_uri_bytes or side <= MIN_THUMBNAIL_PIXELS:
            return data_uri(data, mime)
        side //= 2


@dataclass
class AssetFolder:
    """The folder of full-size pictures beside the pages: ``write`` puts a file there and
    returns its path relative to the pages; ``written`` counts what this report wrote."""

    folder: Path
    written: list[Path] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return self.folder.name

    def write(self, name: str, data: bytes) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / name).write_bytes(data)
        self.written.append(self.folder / name)
        return f"{self.prefix}/{name}"

    def copy(self, source: Path, name: str) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, self.folder / name)
        self.written.append(self.folder / name)
        return f"{self.prefix}/{name}"

    def remove_stale(self) -> None:
        """Delete pictures in the folder that this report did not write (an earlier report's
        of other pairs); nothing else there is touched."""
        keep = set(self.written)
        for path in self.folder.glob("*") if self.folder.is_dir() else []:
            if path.suffix in PICTURE_SUFFIXES and path.is_file() and path not in keep:
                path.unlink()
