"""Tests of the synthetic shapes dataset and the shipped demo classifier/images."""

from __future__ import annotations

import re
from collections import Counter

import pytest
import torch

from lightning_extremal.data import train_demo
from lightning_extremal.data.demo import (
    DemoNet,
    default_checkpoint_path,
    demo_ground_truth,
    demo_images,
    demo_index,
    load_checkpoint,
    load_demo_classifier,
)
from lightning_extremal.data.synthetic import (
    CLASSES,
    SyntheticShapes,
    mask_boxes,
    render_sample,
)

SINGLE = [render_sample(i, seed=11) for i in range(60)]
MULTI = [render_sample(i, seed=11, multi_object=True) for i in range(30)]
HELD_OUT_SEED = 7  # used neither for training (0), testing (1) nor the demo images (2)
HELD_OUT_COUNT = 200
MAX_CHECKPOINT_BYTES = 5 * 2**20


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


def test_demo_net_shapes_and_validation() -> None:
    model = DemoNet().eval()
    assert model(torch.rand(2, 3, 32, 48)).shape == (2, len(CLASSES))
    names = dict(model.named_modules())
    assert {"features.block1.conv", "features.block5.bn", "classifier"} <= set(names)
    with pytest.raises(ValueError, match="24"):
        model(torch.rand(1, 3, 24, 64))
    with pytest.raises(ValueError, match="N×3×H×W"):
        model(torch.rand(3, 64, 64))


def test_checkpoint_is_small_and_complete() -> None:
    path = default_checkpoint_path()
    assert path.stat().st_size <= MAX_CHECKPOINT_BYTES
    checkpoint = load_checkpoint()
    assert tuple(checkpoint["classes"]) == CLASSES
    assert checkpoint["test_accuracy"] >= 0.95
    assert {"seed", "command", "image_size", "state_dict"} <= set(checkpoint)


def test_demo_images_match_their_source_and_ground_truth() -> None:
    images, ids, labels = demo_images()
    masks = demo_ground_truth()
    entries = demo_index()
    assert images.shape == (len(ids), 3, 128, 128) and images.dtype == torch.float32
    assert sum(not e["multi_object"] for e in entries) == len(CLASSES)
    assert sum(e["multi_object"] for e in entries) == 2
    assert sorted(
        lab[0] for lab, e in zip(labels, entries, strict=True) if not e["multi_object"]
    ) == list(range(len(CLASSES)))
    for image, label, mask, entry in zip(images, labels, masks, entries, strict=True):
        source = entry["source"]
        assert source["seed"] == 2
        sample = render_sample(
            source["index"], seed=source["seed"], multi_object=source["multi_object"]
        )
        assert torch.equal(image, sample.image) and label == sample.labels
        assert torch.equal(mask, sample.masks)
        assert entry["boxes"] == sample.boxes.tolist()


@pytest.fixture(scope="module")
def classifier() -> DemoNet:
    return load_demo_classifier()


def test_demo_classifier_is_in_eval_mode(classifier: DemoNet) -> None:
    assert isinstance(classifier, DemoNet)
    assert not any(module.training for module in classifier.modules())


def test_demo_classifier_gets_single_object_demos_right(classifier: DemoNet) -> None:
    images, _, labels = demo_images()
    single = [k for k, lab in enumerate(labels) if len(lab) == 1]
    with torch.no_grad():
        predictions = classifier(images[single]).argmax(1).tolist()
    assert predictions == [labels[k][0] for k in single]


def test_demo_classifier_generalises_to_held_out_images(classifier: DemoNet) -> None:
    checkpoint = load_checkpoint()
    assert HELD_OUT_SEED not in (checkpoint["seed"], checkpoint["test_seed"], 2)
    dataset = SyntheticShapes(HELD_OUT_COUNT, seed=HELD_OUT_SEED)
    images, labels = zip(*(dataset[i] for i in range(len(dataset))), strict=True)
    with torch.no_grad():
        predictions = classifier(torch.stack(images)).argmax(1)
    accuracy = (predictions == torch.tensor(labels)).float().mean().item()
    assert accuracy >= 0.90, accuracy


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*")  # Lightning-internal deprecation
def test_training_script_smoke(tmp_path) -> None:
    out = tmp_path / "tiny.pt"
    threads = torch.get_num_threads()
    try:
        train_demo.main(
            ["--out", str(out), "--train-size", "64", "--test-size", "32", "--epochs", "1"]
            + ["--processes", "1", "--threads", "1"]
        )
    finally:
        torch.set_num_threads(threads)
    checkpoint = torch.load(out, weights_only=True)
    assert 0.0 <= checkpoint["test_accuracy"] <= 1.0
    assert checkpoint["command"].startswith("python -m lightning_extremal.data.train_demo --out")
    assert isinstance(load_demo_classifier(out), DemoNet)


def test_training_script_rejects_shared_seeds() -> None:
    with pytest.raises(SystemExit):
        train_demo.parse_args(["--seed", "3", "--test-seed", "3"])


def test_export_reproduces_shipped_demo_images(tmp_path) -> None:
    entries = train_demo.export_demo_images(tmp_path)
    assert entries == demo_index()
    images, ids, _ = demo_images(tmp_path)
    assert torch.equal(images, demo_images()[0]) and ids == demo_images()[1]
