"""The synthetic shapes dataset (data/synthetic)."""

from __future__ import annotations

import re
from collections import Counter

import pytest
import torch

from lightning_extremal.data.synthetic import (
    CLASSES,
    SyntheticShapes,
    mask_boxes,
    render_sample,
)

SINGLE = [render_sample(i, seed=11) for i in range(60)]


MULTI = [render_sample(i, seed=11, multi_object=True) for i in range(30)]


def _same(a, b) -> bool:
    """All tensors and labels of two samples are identical."""
    return (
        torch.equal(a.image, b.image)
        and torch.equal(a.masks, b.masks)
        and torch.equal(a.boxes, b.boxes)
        and torch.equal(a.distractor_masks, b.distractor_masks)
        and a.labels == b.labels
        and a.distractor_labels == b.distractor_labels
    )


@pytest.mark.parametrize("multi_object", [False, True])
def test_render_is_deterministic(multi_object: bool) -> None:
    first = render_sample(5, seed=3, multi_object=multi_object)
    assert _same(first, render_sample(5, seed=3, multi_object=multi_object))
    assert not torch.equal(first.image, render_sample(6, seed=3, multi_object=multi_object).image)
    assert not torch.equal(first.image, render_sample(5, seed=4, multi_object=multi_object).image)


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("multi_object", [False, True])
def test_shapes_dtypes_and_range(size: int, multi_object: bool) -> None:
    for index in range(5):
        sample = render_sample(index, seed=1, size=size, multi_object=multi_object)
        num = len(sample.labels)
        assert sample.image.shape == (3, size, size) and sample.image.dtype == torch.float32
        assert 0.0 <= sample.image.min() and sample.image.max() <= 1.0
        levels = sample.image * 255
        assert torch.equal(levels, levels.round())  # quantised: exact PNG round trip
        assert sample.masks.shape == (num, size, size) and sample.masks.dtype == torch.bool
        assert sample.boxes.shape == (num, 4) and sample.boxes.dtype == torch.int64
        num_d = len(sample.distractor_labels)
        assert sample.distractor_masks.shape == (num_d, size, size)
        assert sample.distractor_masks.dtype == torch.bool
        assert all(0 <= label < len(CLASSES) for label in sample.labels + sample.distractor_labels)


def test_masks_non_empty_and_boxes_tight() -> None:
    for sample in SINGLE + MULTI:
        assert sample.masks.flatten(1).any(1).all()
        assert sample.distractor_masks.flatten(1).any(1).all()
        assert torch.equal(sample.boxes, mask_boxes(sample.masks))
        for mask, (x0, y0, x1, y1) in zip(sample.masks, sample.boxes.tolist(), strict=True):
            inside = torch.zeros_like(mask)
            inside[y0:y1, x0:x1] = True
            assert not (mask & ~inside).any()
            assert mask[y0].any() and mask[y1 - 1].any()
            assert mask[:, x0].any() and mask[:, x1 - 1].any()


def test_mask_boxes_convention() -> None:
    mask = torch.zeros(1, 10, 12, dtype=torch.bool)
    mask[0, 2:5, 3:9] = True
    assert mask_boxes(mask).tolist() == [[3, 2, 9, 5]]


def test_single_object_layout() -> None:
    counts = Counter(len(s.distractor_labels) for s in SINGLE)
    assert set(counts) <= {0, 1, 2} and len(counts) > 1
    for sample in SINGLE:
        assert len(sample.labels) == 1
        main = sample.masks[0]
        for label, distractor in zip(
            sample.distractor_labels, sample.distractor_masks, strict=True
        ):
            assert label != sample.label
            assert distractor.sum() < main.sum()
            assert not (distractor & main).any()
        if len(sample.distractor_labels) == 2:
            assert not (sample.distractor_masks[0] & sample.distractor_masks[1]).any()


def test_main_object_clearly_larger_than_distractors() -> None:
    largest_distractor = max(int(d.sum()) for s in SINGLE for d in s.distractor_masks)
    smallest_main = min(int(s.masks.sum()) for s in SINGLE)
    assert largest_distractor < smallest_main


def test_multi_object_layout() -> None:
    counts = Counter(len(s.labels) for s in MULTI)
    assert set(counts) == {2, 3}
    for sample in MULTI:
        assert len(set(sample.labels)) == len(sample.labels)
        assert sample.distractor_labels == () and sample.distractor_masks.shape[0] == 0
        overlap = sample.masks.sum(0)
        assert overlap.max() == 1
        smallest = int(sample.masks.sum((1, 2)).min())
        assert smallest > 0.02 * sample.masks.shape[-1] ** 2


@pytest.mark.slow
def test_class_balance() -> None:
    counts = Counter(render_sample(i, seed=5).label for i in range(600))
    assert set(counts) == set(range(len(CLASSES)))
    assert all(60 <= n <= 140 for n in counts.values()), counts


def test_dataset_items() -> None:
    dataset = SyntheticShapes(4, seed=11)
    assert len(dataset) == 4
    image, label = dataset[2]
    assert torch.equal(image, SINGLE[2].image) and label == SINGLE[2].label
    assert _same(dataset.sample(-1), SINGLE[3])
    with pytest.raises(IndexError, match="4"):
        dataset[4]
    multi = SyntheticShapes(3, seed=11, multi_object=True)
    assert _same(multi.sample(1), MULTI[1])


@pytest.mark.parametrize(
    ("call", "bad"),
    [
        (lambda: render_sample(-1), -1),
        (lambda: render_sample(1.5), 1.5),
        (lambda: render_sample(0, seed=-3), -3),
        (lambda: render_sample(0, size=16), 16),
        (lambda: render_sample(0, size=True), True),
        (lambda: render_sample(0, multi_object="yes"), "yes"),
        (lambda: SyntheticShapes(0), 0),
        (lambda: SyntheticShapes(10, seed=-1), -1),
        (lambda: SyntheticShapes(10, size=20), 20),
        (lambda: SyntheticShapes(10, multi_object=1), 1),
    ],
)
def test_bad_arguments_raise(call, bad) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        call()
