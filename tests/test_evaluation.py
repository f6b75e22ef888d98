"""The evaluation package: pointing game, dataset adapters, baselines, faithfulness, benchmark."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from lightning_extremal.data.datasets import (
    VOC_CLASSES,
    COCOPointing,
    SyntheticPointing,
    VOCPointing,
    annotation_mask,
)
from lightning_extremal.evaluation import baselines, faithfulness
from lightning_extremal.ops import pointing
from lightning_extremal.ops.frozen import hook_counts

from .conftest import BoxModel, box_scene

# --- tiny models (importable by the CLI as tests.test_evaluation:NAME) ------------------------


class TinyNet(nn.Module):
    """Seeded conv → BN → ReLU → conv → ReLU → avg-pool → linear classifier."""

    def __init__(self, num_classes: int = 6, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(8, num_classes)
        with torch.no_grad():
            bn = self.features[1]
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


def six_class_model() -> nn.Module:
    return TinyNet(6).eval()


def twenty_class_model() -> nn.Module:
    return TinyNet(20).eval()


def _state(model: nn.Module) -> dict:
    return {
        "params": {k: v.clone() for k, v in model.state_dict().items()},
        "training": {n: m.training for n, m in model.named_modules()},
        "grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "hooks": hook_counts(model),
        "forwards": {n: "forward" in m.__dict__ for n, m in model.named_modules()},
    }


def _assert_same(model: nn.Module, before: dict) -> None:
    after = _state(model)
    assert after["training"] == before["training"]
    assert after["grad"] == before["grad"]
    assert after["hooks"] == before["hooks"]
    assert after["forwards"] == before["forwards"]
    for k, v in before["params"].items():
        assert torch.equal(after["params"][k], v), k


# --- pointing game ----------------------------------------------------------------------------


def _peak(size: tuple[int, int], at: tuple[int, int]) -> torch.Tensor:
    s = torch.zeros(size)
    s[at] = 1.0
    return s


def test_hit_rule_inside_near_and_far():
    gt = torch.zeros(100, 100, dtype=torch.bool)
    gt[40:61, 40:51] = True  # columns 40…50
    assert pointing.pointing_hit(_peak((100, 100), (50, 45)), gt, 15)  # inside
    assert pointing.pointing_hit(_peak((100, 100), (50, 64)), gt, 15)  # 14 px right of col 50
    assert pointing.pointing_hit(_peak((100, 100), (50, 65)), gt, 15)  # exactly 15 px: hit
    assert not pointing.pointing_hit(_peak((100, 100), (50, 66)), gt, 15)  # 16 px: miss
    # Diagonal distance: (row 70, col 60) is √(10² + 10²) ≈ 14.1 px from (60, 50) → hit;
    # (row 72, col 62) is √(12² + 12²) ≈ 17 px → miss.
    assert pointing.pointing_hit(_peak((100, 100), (70, 60)), gt, 15)
    assert not pointing.pointing_hit(_peak((100, 100), (72, 62)), gt, 15)
    assert not pointing.pointing_hit(_peak((100, 100), (50, 45)), torch.zeros_like(gt), 15)
    with pytest.raises(ValueError, match="same H×W"):
        pointing.pointing_hit(torch.zeros(50, 50), gt, 15)


def test_object_iou_at_the_objects_own_area():
    from lightning_extremal.ops.pointing import object_iou

    truth = torch.zeros(10, 10, dtype=torch.bool)
    truth[2:4, 2:7] = True  # 10 pixels
    exact = truth.float() + 0.01 * torch.rand(10, 10)
    assert object_iou(exact, truth) == 1.0  # the 10 highest pixels are the object
    shifted = torch.zeros(10, 10)
    shifted[3:5, 2:7] = 1  # half of it overlaps: 5 / 15
    assert object_iou(shifted, truth) == pytest.approx(5 / 15)
    assert object_iou(-exact, truth) == 0.0  # pointing away
    assert object_iou(exact, torch.zeros(10, 10, dtype=torch.bool)) == 0.0


def test_scaled_tolerance_and_point():
    assert pointing.scaled_tolerance(128, 200) == pytest.approx(15 * 128 / 224)
    assert pointing.scaled_tolerance(224, 300) == 15
    s = torch.zeros(5, 7)
    s[3, 2] = s[4, 6] = 2.0  # ties: the first in raster order
    assert pointing.saliency_point(s) == (3, 2)


def test_pointing_accuracy_averages_per_class():
    score = pointing.pointing_accuracy([True, True, True, False], [0, 0, 0, 1], num_classes=3)
    assert score.accuracy == pytest.approx(0.5)  # (3/3 + 0/1) / 2, not 3/4; class 2 unused
    assert score.class_accuracy[0] == 1 and score.class_accuracy[1] == 0
    assert math.isnan(float(score.class_accuracy[2]))
    assert score.pairs == 4
    assert math.isnan(pointing.pointing_accuracy([], []).accuracy)
    with pytest.raises(ValueError, match="out of range"):
        pointing.pointing_accuracy([True], [5], num_classes=3)


def test_ep_saliency_resizes_sums_and_smooths():
    masks = torch.zeros(4, 32, 48)
    masks[:, 8:16, 30:40] = 1.0
    masks[0, 0:4, 0:4] = 1.0  # one area's stray blob loses to the consensus of the sum
    out = pointing.ep_saliency(masks, (64, 96))
    assert out.shape == (64, 96)
    row, col = pointing.saliency_point(out)
    assert 16 <= row < 32 and 60 <= col < 80
    # σ = 0.09·min(H, W): the smoothed map is wider than the box.
    assert out[10, 70] > 0
    for kind in pointing.POINTING_KINDS:
        assert pointing.pointing_map(masks.sum(0), (64, 96), kind).shape == (64, 96)
    with pytest.raises(ValueError, match="kind must be one of"):
        pointing.pointing_map(masks.sum(0), (64, 96), "nope")


def test_difficult_rule():
    assert pointing.is_difficult_pair(0.1, 1)
    assert not pointing.is_difficult_pair(0.1, 0)  # no distractor
    assert not pointing.is_difficult_pair(0.3, 2)  # large object


# --- dataset adapters on tiny fake copies ----------------------------------------------------


def _voc_object(name: str, box: tuple[int, int, int, int], difficult: int = 0) -> str:
    x0, y0, x1, y1 = box
    return (
        f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>"
        f"<xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>"
        "</bndbox></object>"
    )


def make_fake_voc(root: Path) -> None:
    """VOCdevkit/VOC2007 with two test images (300×200 and 200×250)."""
    base = root / "VOCdevkit" / "VOC2007"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (base / sub).mkdir(parents=True)
    images = {
        "000001": (
            (300, 200),
            [
                _voc_object("dog", (11, 21, 60, 80)),  # small, with other classes: Diff
                _voc_object("cat", (1, 1, 300, 200)),  # the whole image: not Diff
                _voc_object("person", (100, 100, 120, 150), difficult=1),  # all difficult: skip
            ],
        ),
        "000002": (
            (200, 250),
            [_voc_object("dog", (1, 1, 10, 10), 1), _voc_object("dog", (101, 51, 150, 100))],
        ),
    }
    for stem, ((width, height), objects) in images.items():
        Image.new("RGB", (width, height), (120, 60, 30)).save(base / "JPEGImages" / f"{stem}.jpg")
        xml = (
            f"<annotation><filename>{stem}.jpg</filename><size><width>{width}</width>"
            f"<height>{height}</height><depth>3</depth></size>{''.join(objects)}</annotation>"
        )
        (base / "Annotations" / f"{stem}.xml").write_text(xml)
    (base / "ImageSets" / "Main" / "test.txt").write_text("000001\n000002\n")


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


def make_fake_coco(root: Path) -> tuple[Path, Path]:
    images = root / "val2014"
    images.mkdir(parents=True)
    Image.new("RGB", (80, 60), (10, 200, 30)).save(images / "COCO_val2014_000000000001.jpg")
    Image.new("RGB", (40, 40)).save(images / "COCO_val2014_000000000002.jpg")
    Image.new("RGB", (40, 40)).save(images / "COCO_val2014_000000000003.jpg")
    # Column-major runs of 0s and 1s: column 70 starts at pixel 70·60 = 4200.
    rle = {"size": [60, 80], "counts": [4205, 10, 50, 10, 4800 - 4275]}
    data = {
        "images": [
            {"id": 1, "file_name": "COCO_val2014_000000000001.jpg", "width": 80, "height": 60},
            {"id": 2, "file_name": "COCO_val2014_000000000002.jpg", "width": 40, "height": 40},
            {"id": 3, "file_name": "COCO_val2014_000000000003.jpg", "width": 40, "height": 40},
        ],
        "categories": [
            {"id": 7, "name": "kite"},
            {"id": 1, "name": "person"},
            {"id": 3, "name": "car"},
        ],
        "annotations": [
            {  # a 20×10 rectangle of class "person" (id 1 → index 0)
                "id": 10,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "area": 200.0,
                "bbox": [10, 20, 20, 10],
                "segmentation": [[10, 20, 30, 20, 30, 30, 10, 30]],
            },
            {  # a crowd region (uncompressed RLE) of class "kite" (id 7 → index 2)
                "id": 11,
                "image_id": 1,
                "category_id": 7,
                "iscrowd": 1,
                "area": 20.0,
                "bbox": [70, 5, 2, 10],
                "segmentation": rle,
            },
            {
                "id": 12,
                "image_id": 2,
                "category_id": 3,
                "iscrowd": 0,
                "area": 900.0,
                "bbox": [0, 0, 40, 40],
                "segmentation": [[0, 0, 39, 0, 39, 39, 0, 39]],
            },
        ],
    }
    ann = root / "annotations" / "instances_val2014.json"
    ann.parent.mkdir()
    ann.write_text(json.dumps(data))
    return images, ann


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


# --- baselines -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", list(baselines.METHODS))
def test_every_baseline_finite_and_restores_the_model(method):
    model = TinyNet(6)
    model.train()  # left in train mode on purpose: it must come back so
    model.features[0].weight.requires_grad_(False)
    before = _state(model)
    images = torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(0))
    options = {"extremal_perturbation": {"max_iter": 2}, "rise": {"num_masks": 20}}
    out = baselines.saliency(method, model, images, [1, 4], **options.get(method, {}))
    assert out.shape == (2, 32, 40)
    assert torch.isfinite(out).all()
    _assert_same(model, before)


def test_gradient_of_linear_model_is_its_weight():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 5, 4))
    images = torch.rand(2, 3, 6, 5)
    out = baselines.gradient_saliency(model, images, [1, 3])
    weight = model[1].weight.detach().view(4, 3, 6, 5)
    assert torch.allclose(out[0], weight[1].abs().amax(0))
    assert torch.allclose(out[1], weight[3].abs().amax(0))


class TwoLayer(nn.Module):
    """x (1×2×2) → Identity (the read-out layer) → Conv 2×2 (2 units) → ReLU → Linear(2, 2)."""

    def __init__(self, w1: list[list[float]], w2: list[list[float]]) -> None:
        super().__init__()
        self.input = nn.Identity()
        self.hidden = nn.Conv2d(1, 2, 2, bias=False)
        self.relu = nn.ReLU()
        self.classifier = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.tensor(w1).view(2, 1, 2, 2))
            self.classifier.weight.copy_(torch.tensor(w2))

    def forward(self, x):
        return self.classifier(self.relu(self.hidden(self.input(x))).flatten(1))


def _mwp_by_hand(x, w1, w2_row):
    """p_h = h⊙w⁺/Σ h⊙w⁺; p_x,i = Σ_j x_i w1⁺_ji / (Σ_k x_k w1⁺_jk) · p_h,j."""
    x, w1, w2_row = torch.tensor(x), torch.tensor(w1), torch.tensor(w2_row)
    h = (w1 @ x).clamp(min=0)
    top = h * w2_row.clamp(min=0)
    p_h = top / top.sum()
    w1p = w1.clamp(min=0)
    return ((x[None] * w1p) / (w1p @ x)[:, None] * p_h[:, None]).sum(0)


def test_mwp_matches_a_hand_computation():
    w1 = [[1.0, 2.0, 0.5, 1.0], [0.2, 0.1, 3.0, 1.0]]
    w2 = [[1.0, 3.0], [2.0, 0.5]]
    model = TwoLayer(w1, w2).eval()
    x = [0.5, 1.0, 2.0, 0.25]
    image = torch.tensor(x).view(1, 1, 2, 2)
    out = baselines.excitation_backprop_saliency(model, image, [0], layer="input")
    expected = _mwp_by_hand(x, w1, w2[0]).view(2, 2)
    assert torch.allclose(out[0], expected, atol=1e-6)
    assert out.sum() == pytest.approx(1.0, abs=1e-6)  # MWP conserves the probability mass


def test_cmwp_matches_a_hand_computation():
    w1 = [[1.0, 2.0, 0.5, 1.0], [0.2, 0.1, 3.0, 1.0]]
    w2 = [[1.0, -3.0], [2.0, 0.5]]
    model = TwoLayer(w1, w2).eval()
    x = [0.5, 1.0, 2.0, 0.25]
    image = torch.tensor(x).view(1, 1, 2, 2)
    out = baselines.contrastive_excitation_backprop_saliency(
        model, image, [0], layer="input", contrast_layer="relu", classifier_layer="classifier"
    )
    # Target: w2⁺ = [1, 0] → p_h = [1, 0]; dual: (−w2)⁺ = [0, 3] → p_h = [0, 1].
    xt, w1t = torch.tensor(x), torch.tensor(w1)
    share = (xt[None] * w1t) / (w1t @ xt)[:, None]  # row j: x_i w_ji / Σ_k x_k w_jk
    expected = (share[0] - share[1]).clamp(min=0).view(2, 2)
    assert torch.allclose(out[0], expected, atol=1e-6)


def test_mwp_matches_torchray_oracle():
    pytest.importorskip("torchray")
    from torchray.attribution.excitation_backprop import (
        contrastive_excitation_backprop,
        excitation_backprop,
    )

    model = TinyNet(6).eval()
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    ours = baselines.excitation_backprop_saliency(model, image, [2], layer="features.2")
    theirs = excitation_backprop(model, image, 2, saliency_layer="features.2", resize=(32, 32))
    assert torch.allclose(ours, theirs[:, 0], atol=1e-6)
    ours = baselines.contrastive_excitation_backprop_saliency(
        model, image, [2], layer="features.2", contrast_layer="pool"
    )
    theirs = contrastive_excitation_backprop(
        model, image, 2, saliency_layer="features.2", contrast_layer="pool", resize=(32, 32)
    )
    assert torch.allclose(ours, theirs[:, 0], atol=1e-6)


def test_automatic_layers():
    model = TinyNet(6).eval()
    layers = baselines.resolve_layers(model, torch.rand(1, 3, 32, 32))
    assert layers.grad_cam == "features.4"  # the last conv's ReLU
    assert layers.saliency == "features.4"  # the first ReLU at the Grad-CAM map's size
    assert layers.contrast == "pool" and layers.classifier == "classifier"
    with pytest.raises(ValueError, match="not a module"):
        baselines.resolve_layers(model, torch.rand(1, 3, 32, 32), saliency="nope")


class SoftBoxModel(BoxModel):
    """BoxModel with class 0's logit scaled into the softmax's unsaturated range."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().forward(x)
        return torch.stack([0.3 * logits[:, 0] - 1.5, logits[:, 1]], 1)


def test_grad_cam_and_rise_find_the_evidence():
    size, box = 32, (4, 18, 8, 10)  # top, left, height, width
    model = nn.Sequential(
        nn.Conv2d(3, 1, 1, bias=False),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(1, 2, bias=False),
    )
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[4].weight.copy_(torch.tensor([[1.0], [-1.0]]))
    image = box_scene(size, box)
    cam = baselines.grad_cam_saliency(model, image, [0])[0]
    feature = image[0].sum(0)  # Grad-CAM of a linear read-out ∝ the feature map
    assert torch.allclose(cam / cam.max(), feature / feature.max(), atol=1e-5)
    rise = baselines.rise_saliency(SoftBoxModel(size, box), image, [0], num_masks=300)[0]
    row, col = pointing.saliency_point(rise)
    assert 4 <= row < 12 and 18 <= col < 28
    # Same seeded masks for every image: batching does not change the maps.
    pair = torch.cat([image, image.flip(-1)])
    both = baselines.rise_saliency(BoxModel(size, box), pair, [0, 1], num_masks=50)
    alone = baselines.rise_saliency(BoxModel(size, box), pair[1:], [1], num_masks=50)
    assert torch.allclose(both[1], alone[0], atol=1e-6)


def test_center_and_method_names():
    out = baselines.center_saliency(None, torch.zeros(1, 3, 9, 12), [0])
    assert pointing.saliency_point(out[0]) == (4, 5)
    assert baselines.method_name("ep") == "extremal_perturbation"
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        baselines.method_name("nope")


def test_mwp_restores_resnet_blocks():
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18(num_classes=3).eval()
    before = _state(model)
    out = baselines.excitation_backprop_saliency(model, torch.rand(1, 3, 64, 64), [1])
    assert out.shape == (1, 64, 64) and torch.isfinite(out).all()
    _assert_same(model, before)


# --- faithfulness ----------------------------------------------------------------------------


def test_curve_auc_and_spearman():
    assert faithfulness.curve_auc(torch.ones(11)) == pytest.approx(1.0)
    assert faithfulness.curve_auc(torch.linspace(0, 1, 5)) == pytest.approx(0.5)
    a = torch.tensor([3.0, 1.0, 2.0, 2.0])
    assert faithfulness.average_ranks(a).tolist() == [4.0, 1.0, 2.5, 2.5]
    assert faithfulness.spearman(a, a * 2 + 1) == pytest.approx(1.0)
    assert faithfulness.spearman(a, -a) == pytest.approx(-1.0)


def test_deletion_and_insertion_prefer_the_evidence():
    size, box = 24, (6, 4, 8, 10)
    model, image = BoxModel(size, box), box_scene(size, box)[0]
    evidence = torch.zeros(size, size)
    evidence[6:14, 4:14] = 1.0
    evidence += 0.01 * torch.rand(size, size, generator=torch.Generator().manual_seed(0))
    good = faithfulness.deletion_auc(model, image, 0, evidence, steps=12)
    bad = faithfulness.deletion_auc(model, image, 0, -evidence, steps=12)
    assert good < bad
    good = faithfulness.insertion_auc(model, image, 0, evidence, steps=12)
    bad = faithfulness.insertion_auc(model, image, 0, -evidence, steps=12)
    assert good > bad
    curve = faithfulness.perturbation_curve(model, image, 0, evidence, "deletion", steps=12)
    assert curve.shape == (13,) and curve[0] > curve[-1]


def test_sanity_check_detects_a_randomised_model():
    model = TinyNet(6).eval()
    before = _state(model)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    gradient = faithfulness.model_randomisation_check(
        model, images, [0, 1], baselines.gradient_saliency, mode="full"
    )
    assert gradient.layers == ["all"] and gradient.spearman[0] < 0.6
    # A map that ignores the weights does not change at all: the check flags it (ρ = 1).
    center = faithfulness.model_randomisation_check(
        model, images, [0, 1], baselines.center_saliency, mode="cascading"
    )
    assert center.layers == ["classifier", "features.3", "features.0"]
    assert all(r == pytest.approx(1.0) for r in center.spearman)
    _assert_same(model, before)


# --- the benchmark command -------------------------------------------------------------------


def _chunk_times(out: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in sorted((out / "chunks").rglob("*.pt"))}


def test_benchmark_command_prints_writes_and_resumes(tmp_path, capsys):
    from lightning_extremal.cli import main

    out = tmp_path / "bench"
    args = [
        "benchmark", "pointing", "dataset=synthetic", "model=tests.test_evaluation:six_class_model",
        "methods=[center,grad_cam]", "synthetic_single=3", "synthetic_multi=1",
        "synthetic_size=48", "chunk_size=2", "logger=none", f"output_dir={out}",
    ]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| Center |" in printed and "| Grad-CAM |" in printed and "(All/Diff)" in printed
    assert "IoU @ object area" in printed
    rows = (out / "pointing.csv").read_text().splitlines()
    assert rows[0].startswith("method,label,dataset,model,pairs") and len(rows) == 3
    assert (out / "pointing_per_class.csv").is_file() and (out / "manifest.json").is_file()
    times = _chunk_times(out)
    assert len(times) == 4  # 2 methods × 2 chunks
    assert main(args) == 0
    assert "resumed: 4 finished chunk(s) skipped, 0 computed" in capsys.readouterr().out
    assert _chunk_times(out) == times
    # An interrupted run: one chunk file missing → only that chunk is computed again.
    Path(next(iter(times))).unlink()
    assert main(args) == 0
    assert "3 finished chunk(s) skipped, 1 computed" in capsys.readouterr().out
    assert json.loads((out / "manifest.json").read_text())["complete"] is True


def test_benchmark_on_fake_voc_and_faithfulness(tmp_path, capsys):
    from lightning_extremal.jobs.benchmark import main

    make_fake_voc(tmp_path / "voc")
    args = [
        "pointing", "dataset=voc07", f"root={tmp_path / 'voc'}", "methods=[center,gradient]",
        "model=tests.test_evaluation:twenty_class_model", "logger=none",
        f"output_dir={tmp_path / 'out'}",
    ]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "VOC07" in printed and "| Grad |" in printed and "3/1" in printed  # 3 pairs, 1 Diff
    args = [
        "faithfulness", "methods=[center,gradient]", "model=tests.test_evaluation:six_class_model",
        "synthetic_single=2", "synthetic_multi=0", "synthetic_size=40", "curve_steps=4",
        "sanity_images=2", "logger=none", f"output_dir={tmp_path / 'faith'}",
    ]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "deletion AUC" in printed and "| Center |" in printed
    assert (tmp_path / "faith" / "faithfulness.csv").is_file()


def test_benchmark_bad_arguments(tmp_path, capsys):
    from lightning_extremal.jobs.benchmark import main

    assert main(["pointing", "datset=voc07"]) == 2
    assert "unknown key 'datset'" in capsys.readouterr().err
    assert main(["pointing", "dataset=voc07"]) == 2
    assert "needs root=PATH" in capsys.readouterr().err
    assert main(["pointing", "methods=[gradient,nope]"]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
    assert main(["pointing", "model=tests.test_evaluation:twenty_class_model", "logger=none",
                 "synthetic_single=1", "synthetic_multi=0", "methods=[center]",
                 f"output_dir={tmp_path}"]) == 2  # fmt: skip
    assert "(1, 20)" in capsys.readouterr().err


def test_model_left_unchanged_by_copying_helpers():
    model = TinyNet(6).eval()
    before = _state(model)
    list(faithfulness.randomised_models(copy.deepcopy(model), "cascading"))
    list(faithfulness.randomised_models(model, "full"))
    _assert_same(model, before)


def test_smoothing_matches_torchray_imsmooth():
    pytest.importorskip("torchray")
    from torchray.utils import imsmooth

    g = torch.Generator().manual_seed(3)
    raw = torch.rand(30, 40, generator=g)
    ours = pointing.backprop_saliency(raw, (30, 40))
    theirs = imsmooth(raw[None, None], sigma=0.02 * 40, padding_mode="replicate")[0, 0]
    assert torch.allclose(ours, theirs, atol=1e-5)
    masks = torch.rand(3, 30, 40, generator=g)
    ours = pointing.ep_saliency(masks, (30, 40))
    theirs = imsmooth(masks.sum(0)[None, None], sigma=0.09 * 30, padding_mode="constant")[0, 0]
    assert torch.allclose(ours, theirs, atol=1e-5)
