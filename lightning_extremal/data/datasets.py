"""Pointing-game datasets: PASCAL VOC 2007 test, COCO 2014 val and the synthetic shapes.

Every adapter yields :class:`PointingItem`: the model input (a float image in [0, 1] whose
shorter side is resized to 224 px for VOC/COCO; the synthetic set is used at its rendered size,
the demo classifier's input size) and, **at the original image resolution**, one ground-truth
mask per class to score (VOC: union of the class's boxes; COCO: union of its instance masks;
synthetic: the exact visible pixels of the object). Saliency maps are resized to the original
resolution before their maximum is taken, so the 15 px tolerance is in original pixels, as in
the EBP/TorchRay protocol. Nothing is ever downloaded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..ops.pointing import POINTING_TOLERANCE, is_difficult_pair, scaled_tolerance
from .synthetic import CLASSES, render_sample
from .transforms import pil_to_image, resize_image

#: PASCAL VOC classes in the standard order (class id = index).
VOC_CLASSES: tuple[str, ...] = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
#: Shorter side of the model input for VOC and COCO (the EBP/TorchRay protocol).
INPUT_SIZE = 224
#: Stream of the synthetic benchmark images: used neither for training (0), testing (1) nor
#: the demo images (2) of the demo classifier.
SYNTHETIC_SEED = 3


@dataclass
class PointingItem:
    """One image of a pointing-game dataset.

    ``image`` 3×h×w float in [0, 1], the model input; ``size`` (H, W) of the original image;
    ``masks`` class id → H×W bool ground truth at the original resolution, for the classes to
    score; ``diff`` class id → whether the pair is in the Diff subset; ``skipped`` classes present
    but not scored (VOC: all their boxes are marked *difficult*); ``tolerance`` px at the
    original resolution.
    """

    image: torch.Tensor
    image_id: str
    size: tuple[int, int]
    masks: dict[int, torch.Tensor]
    diff: dict[int, bool]
    tolerance: float
    skipped: list[int] = field(default_factory=list)

    @property
    def classes(self) -> list[int]:
        """The classes to score, ascending."""
        return sorted(self.masks)


def to_model_input(image: Image.Image, size: int | None = INPUT_SIZE) -> torch.Tensor:
    """PIL image → 3×h×w float in [0, 1] with the shorter side resized to ``size`` (aspect kept)."""
    return resize_image(pil_to_image(image), size, crop=False)


def boxes_mask(boxes: Sequence[Sequence[float]], size: tuple[int, int]) -> torch.Tensor:
    """Union of boxes ``(x0, y0, x1, y1)`` (0-based, inclusive pixel indices) → H×W bool."""
    height, width = size
    mask = torch.zeros(height, width, dtype=torch.bool)
    for x0, y0, x1, y1 in boxes:
        x0, y0 = max(int(x0), 0), max(int(y0), 0)
        mask[y0 : int(y1) + 1, x0 : int(x1) + 1] = True
    return mask


def read_diff_list(path: str | Path) -> dict[str, list[bool]]:
    """EBP's per-image Diff flags (the format TorchRay ships): ``name\\tflag_0\\t…\\tflag_{C-1}``."""
    flags: dict[str, list[bool]] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if parts:
                flags[parts[0]] = [bool(int(x)) for x in parts[1:]]
    return flags


def _diff_flags(
    name: str,
    box_masks: dict[int, torch.Tensor],
    present: set[int],
    diff_list: dict[str, list[bool]] | None,
) -> dict[int, bool]:
    """Diff membership of each scored class: EBP's list when given, else the rule."""
    if diff_list is not None:
        row = diff_list.get(name)
        return {c: bool(row and c < len(row) and row[c]) for c in box_masks}
    return {
        c: is_difficult_pair(float(m.float().mean()), len(present - {c}))
        for c, m in box_masks.items()
    }


class VOCPointing:
    """PASCAL VOC through ``torchvision.datasets.VOCDetection(root, year, image_set)``.

    ``root`` is the folder that holds ``VOCdevkit/VOC2007/{Annotations, JPEGImages,
    ImageSets/Main}``. Ground truth of class c: the union of all its boxes (including the ones
    marked *difficult*); a class whose boxes are all *difficult* is not scored (TorchRay's
    rule). Diff: EBP's list when ``diff_list`` is given, else :func:`is_difficult_pair` on the
    union of the class's boxes.
    """

    num_classes = len(VOC_CLASSES)
    class_names = VOC_CLASSES

    def __init__(
        self,
        root: str | Path,
        year: str = "2007",
        image_set: str = "test",
        size: int | None = INPUT_SIZE,
        diff_list: str | Path | None = None,
    ) -> None:
        from torchvision.datasets import VOCDetection

        root = Path(root)
        devkit = root / "VOCdevkit" / f"VOC{year}"
        if not devkit.is_dir():
            raise ValueError(
                f"no VOC {year} at {root}: expected {devkit} with Annotations/, JPEGImages/ and "
                "ImageSets/Main/ (download it yourself; nothing is downloaded here)"
            )
        self.dataset = VOCDetection(str(root), year=year, image_set=image_set, download=False)
        self.size = size
        self.diff_list = read_diff_list(diff_list) if diff_list else None

    def __len__(self) -> int:
        return len(self.dataset)

    def _objects(self, index: int) -> tuple[dict, dict[int, list], dict[int, bool]]:
        """Annotation, boxes per class and "all boxes difficult" per class, from the XML only."""
        import xml.etree.ElementTree as ET

        root = ET.parse(self.dataset.annotations[index]).getroot()
        annotation = self.dataset.parse_voc_xml(root)["annotation"]
        objects = annotation.get("object", [])
        objects = objects if isinstance(objects, list) else [objects]
        boxes: dict[int, list[tuple[int, int, int, int]]] = {}
        all_difficult: dict[int, bool] = {}
        for obj in objects:
            name = obj["name"].strip()
            if name not in VOC_CLASSES:
                raise ValueError(f"unknown VOC class {name!r} in image {annotation['filename']}")
            c = VOC_CLASSES.index(name)
            box = obj["bndbox"]
            # VOC boxes are 1-based and inclusive.
            coords = tuple(int(float(box[k])) - 1 for k in ("xmin", "ymin", "xmax", "ymax"))
            boxes.setdefault(c, []).append(coords)  # type: ignore[arg-type]
            difficult = bool(int(obj.get("difficult", "0") or 0))
            all_difficult[c] = all_difficult.get(c, True) and difficult
        return annotation, boxes, all_difficult

    def labels(self, index: int) -> tuple[int, ...]:
        """The scored classes of image ``index`` (sorted ids), without decoding the image."""
        _, _, all_difficult = self._objects(index)
        return tuple(sorted(c for c, hard in all_difficult.items() if not hard))

    def image_id(self, index: int) -> str:
        """The file name's stem, e.g. ``000001``."""
        return Path(self.dataset.images[index]).stem

    def image_file(self, index: int) -> Path:
        return Path(self.dataset.images[index])

    def image_size(self, index: int) -> tuple[int, int]:
        """(H, W) of image ``index`` from its annotation."""
        size = self._objects(index)[0]["size"]
        return int(size["height"]), int(size["width"])

    def __getitem__(self, index: int) -> PointingItem:
        annotation, boxes, all_difficult = self._objects(index)
        with Image.open(self.dataset.images[index]) as pil:
            image = to_model_input(pil, self.size)
        height = int(annotation["size"]["height"])
        width = int(annotation["size"]["width"])
        masks = {c: boxes_mask(b, (height, width)) for c, b in boxes.items()}
        scored = {c: m for c, m in masks.items() if not all_difficult[c]}
        stem = self.image_id(index)
        return PointingItem(
            image=image,
            image_id=stem,
            size=(height, width),
            masks=scored,
            diff=_diff_flags(stem, scored, set(masks), self.diff_list),
            tolerance=POINTING_TOLERANCE,
            skipped=sorted(set(masks) - set(scored)),
        )


class COCOPointing:
    """COCO (e.g. val2014) from ``root`` (the image folder) and ``ann_file`` (instances JSON).

    With pycocotools (the default when it is installed) the images and annotations come from
    ``torchvision.datasets.CocoDetection`` and masks from ``COCO.annToMask``; without it the
    JSON is read directly and polygons are rasterised with PIL's ``ImageDraw.polygon`` (and
    uncompressed RLE decoded); compressed RLE then needs pycocotools. Class ids: the category
    ids sorted, numbered 0…79. Ground truth of class c: the union of its instance masks (crowd
    regions included, as TorchRay). Diff: EBP's list, else :func:`is_difficult_pair` on the
    union of the class's ``bbox`` boxes. Images without annotations are left out.
    """

    def __init__(
        self,
        root: str | Path,
        ann_file: str | Path,
        size: int | None = INPUT_SIZE,
        diff_list: str | Path | None = None,
        use_pycocotools: bool | None = None,
    ) -> None:
        root, ann_file = Path(root), Path(ann_file)
        if not root.is_dir():
            raise ValueError(f"COCO image folder {root} does not exist")
        if not ann_file.is_file():
            raise ValueError(f"COCO annotation file {ann_file} does not exist")
        if use_pycocotools is None:
            try:
                import pycocotools  # noqa: F401

                use_pycocotools = True
            except ImportError:
                use_pycocotools = False
        self.root, self.size = root, size
        self.use_pycocotools = use_pycocotools
        self.diff_list = read_diff_list(diff_list) if diff_list else None
        if use_pycocotools:
            import contextlib
            import io

            from torchvision.datasets import CocoDetection

            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
                self.dataset = CocoDetection(str(root), str(ann_file))
            coco = self.dataset.coco
            self.categories = sorted(coco.getCatIds())
            names = {c["id"]: c["name"] for c in coco.loadCats(self.categories)}
            self._images = {i: coco.loadImgs(i)[0] for i in coco.getImgIds()}
            self._anns = {i: coco.loadAnns(coco.getAnnIds(imgIds=i)) for i in self._images}
        else:
            data = json.loads(ann_file.read_text(encoding="utf-8"))
            self.categories = sorted(c["id"] for c in data["categories"])
            names = {c["id"]: c["name"] for c in data["categories"]}
            self._images = {img["id"]: img for img in data["images"]}
            self._anns = {i: [] for i in self._images}
            for ann in data["annotations"]:
                self._anns[ann["image_id"]].append(ann)
        self.class_index = {cat: k for k, cat in enumerate(self.categories)}
        self.class_names = tuple(names[c] for c in self.categories)
        self.num_classes = len(self.categories)
        self.ids = sorted(i for i, anns in self._anns.items() if anns)

    def __len__(self) -> int:
        return len(self.ids)

    def labels(self, index: int) -> tuple[int, ...]:
        """The annotated classes of image ``index`` (sorted ids), without decoding the image."""
        return tuple(
            sorted({self.class_index[a["category_id"]] for a in self._anns[self.ids[index]]})
        )

    def image_id(self, index: int) -> str:
        """The file name's stem, e.g. ``COCO_val2014_000000000042``."""
        return Path(self._images[self.ids[index]]["file_name"]).stem

    def image_file(self, index: int) -> Path:
        return self.root / self._images[self.ids[index]]["file_name"]

    def image_size(self, index: int) -> tuple[int, int]:
        """(H, W) of image ``index`` from the annotation file."""
        info = self._images[self.ids[index]]
        return int(info["height"]), int(info["width"])

    def _mask(self, ann: dict, size: tuple[int, int]) -> torch.Tensor:
        if self.use_pycocotools:
            return torch.from_numpy(self.dataset.coco.annToMask(ann)).bool()
        return annotation_mask(ann, size)

    def __getitem__(self, index: int) -> PointingItem:
        image_id = self.ids[index]
        info = self._images[image_id]
        height, width = int(info["height"]), int(info["width"])
        with Image.open(self.root / info["file_name"]) as pil:
            image = to_model_input(pil, self.size)
        masks: dict[int, torch.Tensor] = {}
        boxes: dict[int, list[tuple[float, float, float, float]]] = {}
        for ann in self._anns[image_id]:
            c = self.class_index[ann["category_id"]]
            mask = self._mask(ann, (height, width))
            masks[c] = masks[c] | mask if c in masks else mask
            x, y, w, h = ann["bbox"]
            boxes.setdefault(c, []).append((x, y, x + w - 1, y + h - 1))
        box_masks = {c: boxes_mask(b, (height, width)) for c, b in boxes.items()}
        stem = Path(info["file_name"]).stem
        diff = _diff_flags(stem, box_masks, set(masks), self.diff_list)
        return PointingItem(
            image=image,
            image_id=stem,
            size=(height, width),
            masks=masks,
            diff=diff,
            tolerance=POINTING_TOLERANCE,
        )


def annotation_mask(ann: dict, size: tuple[int, int]) -> torch.Tensor:
    """A COCO annotation's mask without pycocotools: polygons (PIL) or uncompressed RLE."""
    height, width = size
    segmentation = ann.get("segmentation")
    if isinstance(segmentation, list):
        canvas = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(canvas)
        for polygon in segmentation:
            points = list(zip(polygon[0::2], polygon[1::2], strict=True))
            if len(points) >= 3:
                draw.polygon(points, fill=1, outline=1)
        return torch.from_numpy(np.asarray(canvas) > 0)
    if isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
        # Uncompressed RLE: alternating runs of 0s and 1s in column-major order.
        flat = np.zeros(height * width, dtype=bool)
        position, value = 0, False
        for run in segmentation["counts"]:
            flat[position : position + run] = value
            position, value = position + run, not value
        return torch.from_numpy(flat.reshape(width, height).T.copy())
    raise ValueError(
        f"annotation {ann.get('id')} has a compressed RLE segmentation: install pycocotools"
    )


class SyntheticPointing:
    """The synthetic shapes (:mod:`lightning_extremal.synthetic`) as a pointing-game dataset.

    Items ``0…num_single−1`` are single-object images (one big object plus 0–2 small
    distractors of other classes), then ``num_multi`` multi-object images (2–3 big objects),
    all rendered from stream ``seed`` at ``size`` px (the demo classifier's 128 by default) and
    used at that size. Ground truth: the object's exact visible pixels. Tolerance:
    ``15·size/224`` px (:func:`~.pointing.scaled_tolerance`). Diff: another object (main or
    distractor) of another class is present and the object's box covers < 1/4 of the image —
    every main object's box does (their scale is at most 0.45 of the side), so Diff = the pairs
    with a distractor or a second main object.
    """

    def __init__(
        self, num_single: int, num_multi: int = 0, seed: int = SYNTHETIC_SEED, size: int = 128
    ) -> None:
        if num_single < 0 or num_multi < 0 or num_single + num_multi == 0:
            raise ValueError(
                f"need a positive number of images; got num_single={num_single}, "
                f"num_multi={num_multi}"
            )
        self.num_single, self.num_multi, self.seed, self.size = num_single, num_multi, seed, size
        self.class_names = CLASSES
        self.num_classes = len(CLASSES)

    def __len__(self) -> int:
        return self.num_single + self.num_multi

    def image_id(self, index: int) -> str:
        """``single-<seed>-<n>`` or ``multi-<seed>-<n>``, without rendering the image."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        multi = index >= self.num_single
        local = index - self.num_single if multi else index
        return f"{'multi' if multi else 'single'}-{self.seed}-{local:05d}"

    def __getitem__(self, index: int) -> PointingItem:
        image_id = self.image_id(index)
        multi = index >= self.num_single
        local = index - self.num_single if multi else index
        sample = render_sample(local, seed=self.seed, size=self.size, multi_object=multi)
        present = set(sample.labels) | set(sample.distractor_labels)
        masks = {c: sample.masks[k] for k, c in enumerate(sample.labels)}
        box_masks = {
            c: boxes_mask([(x0, y0, x1 - 1, y1 - 1)], (self.size, self.size))
            for (x0, y0, x1, y1), c in zip(sample.boxes.tolist(), sample.labels, strict=True)
        }
        return PointingItem(
            image=sample.image,
            image_id=image_id,
            size=(self.size, self.size),
            masks=masks,
            diff=_diff_flags("", box_masks, present, None),
            tolerance=scaled_tolerance(self.size, self.size),
        )
