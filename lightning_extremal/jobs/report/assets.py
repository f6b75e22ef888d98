"""The report's pictures within a size budget: small thumbnails embedded in the page (PNG or
JPEG, whichever is smaller, shrunk until they fit their share of the budget) and full-size
files in a folder beside the page, referenced by relative paths."""

from __future__ import annotations

import base64
import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..run.store import LEDGER_KEY, Ledger, atomic_write_text, refuse_foreign

#: Pictures are shown about this many pixels on their longest side: small images are scaled
#: up by a whole factor, nearest-neighbour, so their pixels stay sharp.
DISPLAY_PIXELS = 256
#: Largest thumbnail side embedded in the page, before the budget shrinks it further.
THUMBNAIL_PIXELS = 256
#: Smallest thumbnail side the budget may shrink to.
MIN_THUMBNAIL_PIXELS = 16
#: The list of the files a report wrote (in its picture folder).
LEDGER_FILE = "written.json"
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
    returns its path relative to the pages; ``written`` counts what this report wrote.

    Every file of the report (pictures and pages) is listed with its content in the folder's
    :data:`LEDGER_FILE`; a file in the way that the report did not write (or that was changed
    since) is refused, never overwritten, and only listed files are ever removed."""

    folder: Path
    written: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ledger = Ledger.read(self.folder.parent, self.ledger_name)

    @property
    def prefix(self) -> str:
        return self.folder.name

    @property
    def ledger_name(self) -> str:
        return f"{self.folder.name}/{LEDGER_FILE}"

    def claim(self, *paths: Path) -> None:
        """Refuse paths where a file the report did not write lies."""
        root = self.folder.parent
        names = [Path(path).resolve().relative_to(root.resolve()).as_posix() for path in paths]
        refuse_foreign(
            root,
            [n for n in names if (root / n).exists() and not self.ledger.owns(n)],
            "the report",
            "write the report elsewhere (--out FILE.html)",
        )

    def write(self, name: str, data: bytes) -> str:
        self.claim(self.folder / name)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / name).write_bytes(data)
        self.written.append(self.folder / name)
        return f"{self.prefix}/{name}"

    def copy(self, source: Path, name: str) -> str:
        self.claim(self.folder / name)
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, self.folder / name)
        self.written.append(self.folder / name)
        return f"{self.prefix}/{name}"

    def write_page(self, text: str, path: Path) -> None:
        """A page of the report (``claim`` it first, before any work)."""
        atomic_write_text(text, path)
        self.written.append(path)

    def remove_stale(self) -> None:
        """Delete the files an earlier report listed that this one did not write (pictures of
        other pairs, pages past the last), then list this report's files; nothing else in
        the folder is touched."""
        root = self.folder.parent
        keep = {Path(p).resolve().relative_to(root.resolve()).as_posix() for p in self.written}
        self.ledger.remove([name for name in self.ledger.files if name not in keep])
        self.ledger.record(*sorted(keep))
        text = json.dumps({LEDGER_KEY: dict(sorted(self.ledger.files.items()))}, indent=1)
        atomic_write_text(text, root / self.ledger_name)
