"""``data=photos``: real photos that ship inside installed wheels (scikit-image, scikit-learn,
matplotlib), each with a hand-drawn box around the object of its top-1 ImageNet class under
``model=efficientnet_lite0`` — a real bed for the pointing game that needs no download.

The boxes are data (``assets/photos.json``): inclusive pixel indices ``(x0, y0, x1, y1)`` of
the original photo, drawn on a grid and checked by eye on an overlay
(``docs/images/photos_boxes.png``). The label of each photo is that top-1 class id.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from PIL import Image

from ..errors import UsageError
from ..ops.pointing import POINTING_TOLERANCE, is_difficult_pair
from .datasets import PointingItem, boxes_mask, to_model_input
from .models import imagenet_classes
from .transforms import oriented_size

#: The photos' index, in ``lightning_extremal/assets``.
PHOTOS_INDEX = "photos.json"


@dataclass(frozen=True)
class Photo:
    """One photo: where it ships (``package``'s folder / ``file``), its top-1 ImageNet class
    under EfficientNet-Lite0 and the box of that object in original pixels (inclusive)."""

    id: str
    package: str
    file: str
    class_id: int
    class_name: str
    object: str
    box: tuple[int, int, int, int]


def photo_index() -> list[Photo]:
    """The photos of ``assets/photos.json``, in file order."""
    path = resources.files("lightning_extremal").joinpath("assets", PHOTOS_INDEX)
    entries = json.loads(path.read_text(encoding="utf-8"))["photos"]
    return [Photo(**{**entry, "box": tuple(entry["box"])}) for entry in entries]


def photo_file(photo: Photo) -> Path:
    """The photo's file inside its installed package (the package is not imported)."""
    spec = importlib.util.find_spec(photo.package)
    if spec is None or spec.origin is None:
        raise UsageError(
            f"data=photos needs {photo.package} (photo {photo.id!r}): pip install "
            "'lightning-extremal[real]'"
        )
    path = Path(spec.origin).parent / photo.file
    if not path.is_file():
        raise UsageError(f"photo {photo.id!r} is missing from {photo.package}: no {path}")
    return path


class PhotosPointing:
    """The photos as a pointing-game dataset (the interface of :class:`~.datasets.VOCPointing`).

    One scored class per photo: its top-1 class, whose ground truth is its box. Input: shorter
    side resized to ``size`` (None: the original photo). Tolerance: 15 px at the original
    resolution, as VOC/COCO; Diff by :func:`~..ops.pointing.is_difficult_pair` on the box.
    """

    num_classes = 1000

    def __init__(self, size: int | None = None) -> None:
        self.photos = photo_index()
        self.files = [photo_file(p) for p in self.photos]
        self.size = size
        self.class_names = imagenet_classes()

    def __len__(self) -> int:
        return len(self.photos)

    def labels(self, index: int) -> tuple[int, ...]:
        return (self.photos[index].class_id,)

    def image_id(self, index: int) -> str:
        return self.photos[index].id

    def image_file(self, index: int) -> Path:
        return self.files[index]

    def image_size(self, index: int) -> tuple[int, int]:
        """(H, W) of the original photo, from its header."""
        with Image.open(self.files[index]) as pil:
            width, height = oriented_size(pil)
        return height, width

    def __getitem__(self, index: int) -> PointingItem:
        photo = self.photos[index]
        with Image.open(self.files[index]) as pil:
            image = to_model_input(pil, self.size)
        size = self.image_size(index)
        box = boxes_mask([photo.box], size)
        return PointingItem(
            image=image,
            image_id=photo.id,
            size=size,
            masks={photo.class_id: box},
            diff={photo.class_id: is_difficult_pair(float(box.float().mean()), 0)},
            tolerance=POINTING_TOLERANCE,
        )
