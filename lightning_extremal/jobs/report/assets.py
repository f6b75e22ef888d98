"""The report's pictures: each page's thumbnails packed in one JPEG sheet in the folder beside
the pages (referenced by relative paths), and that folder's ledger of what the report wrote."""

from __future__ import annotations

import base64
import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...viz import overlay, to_uint8
from ..run.store import LEDGER_KEY, Ledger, atomic_write_text, refuse_foreign

#: Longest side of a thumbnail, px (a cell of its page's sheet is this square).
TILE_PIXELS = 80
#: Cells in a row of a sheet (the sheet of a page of 100 pairs at three pictures a pair is
#: 24 × 13 cells: 1920 × 1040 px).
SHEET_COLUMNS = 24
#: JPEG quality of the sheets.
JPEG_QUALITY = 75
#: The list of the files a report wrote (in its picture folder).
LEDGER_FILE = "written.json"


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def thumbnails(image: torch.Tensor, masks: torch.Tensor) -> list[torch.Tensor]:
    """The image (C×H×W in [0, 1]) and its overlay with each mask (K×H×W), as uint8 3×h×w
    pictures of at most :data:`TILE_PIXELS` a side: image and masks are shrunk first (area
    average), so the heat maps are computed on a few thousand pixels, not on the full image."""
    height, width = image.shape[-2:]
    scale = min(1.0, TILE_PIXELS / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    stack = torch.cat([image.float()[:3].expand(3, -1, -1), masks.float()])[None]
    if scale < 1:
        stack = F.interpolate(stack, size=size, mode="area")
    small_image, small_masks = stack[0, :3], stack[0, 3:]
    return [to_uint8(small_image)] + [to_uint8(overlay(small_image, m)) for m in small_masks]


@dataclass
class Tile:
    """Where a thumbnail lies in its sheet (px) and how much it is enlarged on the page (a
    whole factor: small images keep sharp pixels)."""

    x: int
    y: int
    width: int
    height: int
    scale: int


class ThumbnailSheet:
    """The thumbnails of one page packed in one JPEG (a CSS sprite sheet): a page of a
    hundred pairs costs one picture file, not hundreds, and each thumbnail a few hundred
    bytes of JPEG instead of a base64 data URI in the page."""

    def __init__(self) -> None:
        self.pictures: list[torch.Tensor] = []

    def add(self, picture: torch.Tensor) -> Tile:
        """Place a uint8 3×h×w picture (h, w ≤ :data:`TILE_PIXELS`) in the next cell."""
        cell = len(self.pictures)
        self.pictures.append(picture)
        height, width = picture.shape[-2:]
        scale = max(1, TILE_PIXELS // max(height, width))
        row, column = divmod(cell, SHEET_COLUMNS)
        return Tile(column * TILE_PIXELS, row * TILE_PIXELS, width, height, scale)

    #: Width of every sheet, px (fixed, so a page's CSS can enlarge it before it is drawn;
    #: the white of a short last row costs next to nothing in JPEG).
    WIDTH = SHEET_COLUMNS * TILE_PIXELS

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the sheet, px."""
        return self.WIDTH, max(1, -(-len(self.pictures) // SHEET_COLUMNS)) * TILE_PIXELS

    def jpeg(self) -> bytes:
        """The sheet as JPEG bytes (white between the thumbnails)."""
        from PIL import Image

        width, height = self.size
        sheet = np.full((height, width, 3), 255, dtype=np.uint8)
        for cell, picture in enumerate(self.pictures):
            row, column = divmod(cell, SHEET_COLUMNS)
            h, w = picture.shape[-2:]
            y, x = row * TILE_PIXELS, column * TILE_PIXELS
            sheet[y : y + h, x : x + w] = picture.permute(1, 2, 0).numpy()
        buffer = io.BytesIO()
        Image.fromarray(sheet).save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        return buffer.getvalue()


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
