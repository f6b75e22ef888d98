"""The pointing-game dataset adapters (data/datasets) on tiny fake copies."""

from __future__ import annotations

import pytest
import torch

from lightning_extremal.data.datasets import (
    VOC_CLASSES,
    COCOPointing,
    SyntheticPointing,
    VOCPointing,
    annotation_mask,
)
from tests.helpers import make_fake_coco, make_fake_voc


def test_voc_adapter(tmp_path):
    make_fake_voc(tmp_path)
    data = VOCPointing(tmp_path)
    assert len(data) == 2
    first = data[0]
    dog, cat, person = (VOC_CLASSES.index(n) for n in ("dog", "cat", "person"))
    assert first.image_id == "000001" and first.size == (200, 300)
    assert first.image.shape == (3, 224, 336)  # shorter side 224, aspect kept
    assert first.classes == sorted([dog, cat]) and first.skipped == [person]
    assert first.masks[dog].shape == (200, 300)  # ground truth at the original resolution
    rows, cols = torch.nonzero(first.masks[dog], as_tuple=True)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (20, 79, 10, 59)  # 1-based → 0
    assert first.diff == {dog: True, cat: False}
    assert first.tolerance == 15
    second = data[1]
    assert second.classes == [dog]  # one of its two dog boxes is not difficult
    assert second.masks[dog][0, 0] and second.masks[dog][60, 120]  # union of both boxes
    assert second.diff == {dog: False}  # no other class present
    flags = tmp_path / "diff.txt"
    flags.write_text("000001\t" + "\t".join("1" if c == cat else "0" for c in range(20)) + "\n")
    listed = VOCPointing(tmp_path, diff_list=flags)
    assert listed[0].diff == {dog: False, cat: True}
    assert listed[1].diff == {dog: False}  # not in the list: not Diff
    with pytest.raises(ValueError, match="no VOC 2007"):
        VOCPointing(tmp_path / "missing")


@pytest.mark.parametrize("use_pycocotools", [False, True])
def test_coco_adapter(tmp_path, use_pycocotools):
    if use_pycocotools:
        pytest.importorskip("pycocotools")
    images, ann = make_fake_coco(tmp_path)
    data = COCOPointing(images, ann, use_pycocotools=use_pycocotools)
    assert data.num_classes == 3 and data.class_names == ("person", "car", "kite")
    assert len(data) == 2  # image 3 has no annotations
    first = data[0]
    assert first.image_id == "COCO_val2014_000000000001" and first.size == (60, 80)
    assert first.image.shape == (3, 224, 298)
    assert first.classes == [0, 2]
    person = first.masks[0]
    assert person.shape == (60, 80)
    assert person[21:29, 11:29].all() and not person[:15].any() and not person[:, 35:].any()
    kite = first.masks[2]  # RLE: column-major runs → columns 70 and 71, rows 5…14
    assert kite.sum() == 20 and kite[5:15, 70:72].all()
    assert first.diff == {0: True, 2: True}  # small, with another class
    assert data[1].diff == {1: False}


def test_coco_fallback_matches_pycocotools(tmp_path):
    pytest.importorskip("pycocotools")
    images, ann = make_fake_coco(tmp_path)
    a = COCOPointing(images, ann, use_pycocotools=True)[0].masks[0]
    b = COCOPointing(images, ann, use_pycocotools=False)[0].masks[0]
    assert (a & b).sum() / (a | b).sum() > 0.85  # boundary pixels may differ
    with pytest.raises(ValueError, match="compressed RLE"):
        annotation_mask({"id": 1, "segmentation": {"counts": "abc", "size": [4, 4]}}, (4, 4))


def test_synthetic_adapter():
    from lightning_extremal.data.synthetic import render_sample

    data = SyntheticPointing(2, 1, seed=3, size=64)
    assert len(data) == 3
    single, multi = data[0], data[2]
    sample = render_sample(0, seed=3, size=64)
    assert single.classes == [sample.label]
    assert torch.equal(single.masks[sample.label], sample.masks[0])
    assert torch.equal(single.image, sample.image)
    assert single.tolerance == pytest.approx(15 * 64 / 224)
    assert single.diff[sample.label] == (len(sample.distractor_labels) > 0)
    assert len(multi.classes) >= 2 and all(multi.diff.values())
    with pytest.raises(ValueError, match="positive number"):
        SyntheticPointing(0, 0)
