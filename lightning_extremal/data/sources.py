"""Images to explain: the bundled demo set, the synthetic set, the photos shipped in wheels, a
local VOC/COCO, a folder, or a glob of files.

An :class:`ImageSource` knows every image's id and size up front but decodes images only when
a chunk needs them, so a dataset of any size streams through a run in bounded memory.
"""

from __future__ import annotations

import glob
import os
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from ..ops.digest import file_digest, tensor_digest
from .datasets import COCOPointing, VOCPointing
from .demo import demo_ground_truth, demo_images
from .photos import PhotosPointing
from .synthetic import DEFAULT_SIZE, render_sample
from .transforms import fit_mask, oriented_size, read_image, resize_image, resized_shape

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
#: Errors that mean "this file is not a readable image".
UNREADABLE = (UnidentifiedImageError, OSError, ValueError, SyntaxError)


@dataclass
class ImageSource:
    """Lazily loaded images: ids, sizes (C, H, W after resizing), labels and ground truth.

    ``load(i)`` returns image ``i`` as a C×H×W float tensor in [0, 1], or None when it turns
    out unreadable (then it is listed in ``skipped``). ``truth(i)`` returns its object masks
    (H×W bool each, label order) when the source has them, else None. ``digest(i)`` is a
    short hash of its content (the file's bytes where there is a file, else the pixels), so a
    results key changes when the picture does.
    """

    ids: list[str]
    shapes: list[tuple[int, int, int]]
    loader: Callable[[int], torch.Tensor]
    labels: list[tuple[int, ...]] | None = None
    truths: Callable[[int], list[torch.Tensor] | None] | None = None
    skipped: list[dict[str, str]] = field(default_factory=list)
    #: Image ``i`` → the file it is read from (None: generated, hashed by its pixels).
    files: Callable[[int], Path | None] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> torch.Tensor | None:
        try:
            return self.loader(index)
        except UNREADABLE as error:
            _skip(self.skipped, self.ids[index], error)
            return None

    def truth(self, index: int) -> list[torch.Tensor] | None:
        return self.truths(index) if self.truths is not None else None

    def digest(self, index: int) -> str:
        """A hash of image ``index``'s content: its file's bytes, or its decoded pixels."""
        path = self.files(index) if self.files is not None else None
        if path is not None:
            try:
                return file_digest(path)
            except OSError:
                return "unreadable"
        return tensor_digest(self.loader(index))


def _skip(skipped: list[dict[str, str]], name: str, error: Exception) -> None:
    warnings.warn(f"skipping unreadable image {name}: {error}", stacklevel=3)
    skipped.append({"path": str(name), "error": str(error)})


def list_image_files(source: str) -> list[Path]:
    """Image files of a folder (sorted) or of a glob pattern."""
    path = Path(source).expanduser()
    if path.is_dir():
        files = [p for p in sorted(path.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    elif path.is_file():
        files = [path]
    else:
        files = [Path(p) for p in sorted(glob.glob(str(path), recursive=True))]
        files = [p for p in files if p.is_file()]
    if not files:
        raise ValueError(
            f"no images found at {source!r}: give 'demo', 'synthetic', a folder of images or a "
            f"glob pattern (suffixes {', '.join(IMAGE_SUFFIXES)})"
        )
    return files


def unique_ids(files: list[Path]) -> list[str]:
    """An id per file: its stem, or where stems clash (``a.png``, ``a.jpg``) its name, or
    where names clash too (a glob over folders) its path below the files' common folder."""
    stems = Counter(path.stem for path in files)
    names = Counter(path.name for path in files)
    common = Path(os.path.commonpath([path.parent for path in files])) if files else Path()
    ids = [
        path.stem
        if stems[path.stem] == 1
        else path.name
        if names[path.name] == 1
        else path.relative_to(common).as_posix()
        for path in files
    ]
    if len(set(ids)) < len(ids):  # e.g. ``a.png`` beside ``a.png.jpg``
        return [path.relative_to(common).as_posix() for path in files]
    return ids


def folder_source(source: str, size: int | None, crop: bool) -> ImageSource:
    """Files of a folder or glob; sizes read from the headers, pixels decoded on demand."""
    files, shapes, skipped = [], [], []
    for path in list_image_files(source):
        try:
            with Image.open(path) as pil:
                width, height = oriented_size(pil)
        except UNREADABLE as error:
            _skip(skipped, str(path), error)
            continue
        files.append(path)
        shapes.append((3, *resized_shape(height, width, size, crop)))
    if not files:
        raise ValueError(f"none of the images at {source!r} could be read: {skipped}")
    return ImageSource(
        ids=unique_ids(files),
        shapes=shapes,
        loader=lambda i: resize_image(read_image(files[i]), size, crop),
        skipped=skipped,
        files=lambda i: files[i],
    )


def demo_source(size: int | None, crop: bool) -> ImageSource:
    """The bundled demo images with their labels and exact object masks."""
    images, ids, labels = demo_images()
    images = [resize_image(x, size, crop) for x in images]
    truths = [[fit_mask(m, size, crop) for m in masks] for masks in demo_ground_truth()]
    return ImageSource(
        ids=list(ids),
        shapes=[tuple(x.shape) for x in images],
        loader=lambda i: images[i],
        labels=[tuple(t) for t in labels],
        truths=lambda i: truths[i],
    )


def synthetic_source(
    num_images: int, seed: int, multi_object: bool, size: int | None, crop: bool
) -> ImageSource:
    """``num_images`` images of the synthetic shapes stream ``seed``, rendered on demand."""
    if not isinstance(num_images, int) or num_images < 1:
        raise ValueError(f"data.num_images must be a positive integer; got {num_images!r}")
    side = DEFAULT_SIZE
    shape = (3, *resized_shape(side, side, size, crop))
    prefix = "multi" if multi_object else "single"

    def sample(i: int):
        return render_sample(i, seed=seed, size=side, multi_object=multi_object)

    return ImageSource(
        ids=[f"synthetic-{prefix}-s{seed}-{i:05d}" for i in range(num_images)],
        shapes=[shape] * num_images,
        loader=lambda i: resize_image(sample(i).image, size, crop),
        labels=[tuple(sample(i).labels) for i in range(num_images)],
        truths=lambda i: [fit_mask(m, size, crop) for m in sample(i).masks],
    )


def dataset_source(dataset, size: int | None, crop: bool) -> ImageSource:
    """A pointing-game dataset (local VOC / COCO, :mod:`~lightning_extremal.data.datasets`;
    the photos, :mod:`~lightning_extremal.data.photos`) as a source.

    Ids, sizes and labels (the classes with ground truth) come from the annotations up front;
    an image is decoded only when its chunk runs. Ground truth of a label: the union of its
    boxes (VOC, photos) or instance masks (COCO), resized like the image.
    """
    labels = [dataset.labels(i) for i in range(len(dataset))]
    shapes = [(3, *resized_shape(*dataset.image_size(i), size, crop)) for i in range(len(dataset))]
    last: dict[int, object] = {}

    def item(i: int):
        if i not in last:  # the loader and the ground truth of one image share one decode
            last.clear()
            last[i] = dataset[i]
        return last[i]

    def truth(i: int) -> list[torch.Tensor]:
        masks = item(i).masks
        return [fit_mask(masks[c], size, crop) for c in labels[i]]

    return ImageSource(
        ids=[dataset.image_id(i) for i in range(len(dataset))],
        shapes=shapes,
        loader=lambda i: resize_image(item(i).image, size, crop),
        labels=labels,
        truths=truth,
        files=getattr(dataset, "image_file", None),
    )


#: ``data.source`` values that name a local dataset root (``data.root``).
DATASET_SOURCES = ("voc07", "coco14")


def open_source(
    source: str,
    size: int | None = None,
    crop: bool = True,
    *,
    num_images: int = 64,
    seed: int = 0,
    multi_object: bool = False,
    root: str | None = None,
    image_set: str = "test",
    ann_file: str | None = None,
    image_dir: str | None = None,
) -> ImageSource:
    """``demo``, ``synthetic`` (``num_images``, ``seed``, ``multi_object``), ``photos``, ``voc07``
    (``root`` holding ``VOCdevkit/VOC2007``, ``image_set``), ``coco14`` (``root`` holding
    ``val2014/`` and ``annotations/instances_val2014.json``, or ``image_dir``/``ann_file``),
    a folder or a glob."""
    if source == "demo":
        return demo_source(size, crop)
    if source == "synthetic":
        return synthetic_source(num_images, seed, multi_object, size, crop)
    if source == "photos":
        return dataset_source(PhotosPointing(size=None), size, crop)
    if source in DATASET_SOURCES:
        if root is None and not (source == "coco14" and image_dir and ann_file):
            raise ValueError(
                f"data={source} needs data.root=<folder> (nothing is downloaded): "
                + (
                    "the folder holding VOCdevkit/VOC2007"
                    if source == "voc07"
                    else "the folder holding val2014/ and annotations/instances_val2014.json"
                )
            )
        if source == "voc07":
            dataset = VOCPointing(root, image_set=image_set, size=None)
        else:
            base = Path(root) if root else None
            dataset = COCOPointing(
                image_dir or base / "val2014",
                ann_file or base / "annotations" / "instances_val2014.json",
                size=None,
            )
        return dataset_source(dataset, size, crop)
    return folder_source(source, size, crop)
