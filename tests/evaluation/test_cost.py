"""What a job will cost (evaluation/cost): the estimate's arithmetic and line on known numbers,
and the calibration on a real model (the warm start counted only where it happens)."""

from __future__ import annotations

import pytest
import torch

from lightning_extremal.config import MethodConfig
from lightning_extremal.evaluation.cost import (
    MaskCost,
    MethodEstimate,
    benchmark_line,
    calibrate_masks,
    duration,
    estimate_line,
    mask_seconds,
    method_estimate,
)
from lightning_extremal.modules.image_masks import WARM_FIT_STEPS
from tests.helpers import TinyConvNet


def test_mask_seconds_counts_every_mask_step_and_each_warm_start_fit():
    cost = MaskCost(step_s=0.5, warm_s=0.1, warm_steps=50)
    # 64 masks × (20 steps × 0.5 s + one warm start of 50 × 0.1 s) = 64 × 15 s
    assert mask_seconds(cost, 64, 20) == 960.0
    assert mask_seconds(cost, 64, 20, warm_fits=2) == 1280.0  # a warm start per game
    assert mask_seconds(MaskCost(0.25, 0.0, 0), 8, 4) == 8.0  # uniform start: steps only


def test_estimate_line_says_minutes_what_it_counts_and_how_to_shorten():
    assert duration(0.2) == "<1 s" and duration(12.4) == "~12 s" and duration(89) == "~89 s"
    assert duration(960.0) == "~16 min" and duration(90) == "~2 min"
    line = estimate_line(960.0, "64 masks × 20 steps", "`max_iter=…`")
    assert (
        line == "estimate: ~16 min on this machine (64 masks × 20 steps); `max_iter=…` to shorten"
    )
    estimates = [
        MethodEstimate("center", 0.1, "4 pairs"),
        MethodEstimate("rise", 275, "8000 masks × 4 images"),
    ]
    assert benchmark_line(estimates) == (
        "estimate: ~5 min on this machine (rise ~5 min (8000 masks × 4 images), center <1 s "
        "(4 pairs)); `limit=…` / `max_iter=…` / `rise_masks=…` / fewer `methods=` to shorten"
    )


@pytest.mark.parametrize("warm_start, warm_steps", [("grad_cam", WARM_FIT_STEPS), ("none", 0)])
def test_calibration_times_the_steps_of_one_pairs_masks(warm_start, warm_steps):
    model, image = TinyConvNet(), torch.rand(3, 24, 24)
    method = MethodConfig(areas=[0.1, 0.3], step=4, sigma=4.0, warm_start=warm_start)
    cost = calibrate_masks(model, image, 1, method)
    assert cost.step_s > 0 and cost.warm_steps == warm_steps
    assert (cost.warm_s > 0) == (warm_steps > 0)
    assert all(not p.requires_grad or p.grad is None for p in model.parameters())


def test_rise_estimate_scales_one_batch_to_all_masks_and_images():
    model, image = TinyConvNet(), torch.rand(3, 24, 24)
    options = {"num_masks": 500, "score": "softmax", "seed": 0}
    found = method_estimate("rise", model, image, 0, options, pairs=6, images=3)
    assert found.work == "500 masks × 3 images" and found.seconds > 0
    center = method_estimate("center", model, image, 0, {}, pairs=6, images=3)
    assert center.work == "6 pairs" and center.seconds < found.seconds
