"""The shipped demo classifier and images (data/demo)."""

from __future__ import annotations

import pytest
import torch

from lightning_extremal.data.demo import (
    DemoNet,
    default_checkpoint_path,
    demo_ground_truth,
    demo_images,
    demo_index,
    load_checkpoint,
    load_demo_classifier,
)
from lightning_extremal.data.synthetic import CLASSES, SyntheticShapes, render_sample

HELD_OUT_SEED = 7  # used neither for training (0), testing (1) nor the demo images (2)


HELD_OUT_COUNT = 200


MAX_CHECKPOINT_BYTES = 5 * 2**20


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
