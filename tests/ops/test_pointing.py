"""Pointing game and mask-quality metrics (ops/pointing)."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_extremal.ops import pointing
from lightning_extremal.ops.pointing import (
    ep_saliency,
    hit_at_point,
    mask_quality,
    region_iou,
    saliency_point,
    summarize_quality,
    top_area_region,
)

# --------------------------------------------------------------------------- pointing game


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


# --------------------------------------------------------------------------- a run's quality scores


def test_top_area_region_and_iou_exact():
    mask = torch.zeros(10, 10)
    mask[:2] = 1.0  # the top 20 pixels
    mask[2, :5] = 0.5
    region = top_area_region(mask, 0.2)
    assert region.sum() == 20 and region[:2].all()
    truth = torch.zeros(10, 10, dtype=torch.bool)
    truth[1:3] = True  # 20 pixels, 10 shared
    assert region_iou(region, truth) == pytest.approx(10 / 30)
    assert region_iou(torch.zeros_like(truth), torch.zeros_like(truth)) == 0.0


def test_pointing_game_hit_and_miss():
    masks = torch.zeros(2, 64, 64)
    masks[:, 40:50, 10:20] = 1.0  # both areas agree: the peak is near (45, 15)
    row, col = saliency_point(ep_saliency(masks, (64, 64)))
    assert 40 <= row < 50 and 10 <= col < 20
    truth = torch.zeros(64, 64, dtype=torch.bool)
    truth[44:46, 14:16] = True
    assert hit_at_point((row, col), truth, tolerance=2.0)
    far = torch.zeros(64, 64, dtype=torch.bool)
    far[0:2, 60:64] = True
    assert not hit_at_point((row, col), far, tolerance=15 * 64 / 224)


def test_mask_quality_uses_the_largest_area_and_skips_missing_truth():
    masks = torch.zeros(2, 2, 16, 16)
    masks[0, 1, :8] = 1.0  # the largest area (0.5) finds the top half exactly
    truth = torch.zeros(16, 16, dtype=torch.bool)
    truth[:8] = True
    scores = mask_quality(masks, [0.1, 0.5], [truth, None])
    assert scores["iou"][0] == pytest.approx(1.0) and math.isnan(scores["iou"][1])
    assert scores["pointing_hit"] == [True, None]
    assert summarize_quality(scores["iou"], scores["pointing_hit"]) == {
        "iou": 1.0,
        "pointing": 1.0,
        "pairs": 1.0,
    }
    assert summarize_quality([math.nan], [None]) is None


def test_mask_at_area_interpolates_between_the_bracketing_areas():
    masks = torch.stack([torch.full((2, 2), v) for v in (0.0, 1.0, 3.0)])  # areas .1 .2 .4
    areas = [0.1, 0.2, 0.4]
    assert pointing.mask_at_area(masks, areas, 0.3).unique().tolist() == [2.0]  # halfway 1 → 3
    assert pointing.mask_at_area(masks, areas, 0.15).unique().tolist() == [0.5]
    assert pointing.mask_at_area(masks, areas, 0.2).unique().tolist() == [1.0]  # exact area
    assert pointing.mask_at_area(masks, areas, 0.05).unique().tolist() == [0.0]  # below: nearest
    assert pointing.mask_at_area(masks, areas, 0.9).unique().tolist() == [3.0]  # above: nearest
    unordered = pointing.mask_at_area(masks[[2, 0, 1]], [0.4, 0.1, 0.2], 0.3)
    assert unordered.unique().tolist() == [2.0]


def test_object_area_iou_ranks_the_interpolated_mask_at_the_object_area():
    """Two areas' masks, each a box; the object's area lies between them: the blend ranks
    the small box first, then the rest of the large one — the |object| top pixels."""
    truth = torch.zeros(10, 10, dtype=torch.bool)
    truth[2:6, 2:7] = True  # 20 px: area 0.2
    small = torch.zeros(10, 10)
    small[2:6, 2:5] = 1  # 12 px inside the object
    large = torch.zeros(10, 10)
    large[2:8, 2:7] = 1  # 30 px covering it
    iou = pointing.object_area_iou(torch.stack([small, large]), [0.12, 0.3], truth)
    # blend at 0.2: small box 1.0, rest of large 0.44; top 20 = small box + 8 of the other 18
    # large-box pixels (raster order: rows 2–5 cols 5–6 first, all inside the object).
    assert iou == pytest.approx(1.0)
    shifted = torch.zeros(10, 10)
    shifted[4:8, 2:7] = 1
    assert pointing.object_area_iou(torch.stack([shifted, shifted]), [0.1, 0.3], truth) == (
        pytest.approx(10 / 30)
    )
