"""Memory checked before work (#13 item 7): the estimate's parts against exact counts, and a
chunk that cannot fit refused at once with the fix, in the API and the job."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from lightning_extremal import extremal_perturbation
from lightning_extremal.api.memory import (
    FIT_OVERHEAD,
    MemoryEstimate,
    activation_bytes,
    available_memory,
    check_memory,
    estimate_memory,
    grid_pixels,
)
from lightning_extremal.cli import main
from lightning_extremal.config import MethodConfig
from lightning_extremal.errors import UsageError
from tests.helpers import FAST, TINY_MODEL, TinyConvNet, write_images

#: Areas × images that no machine holds at 4096² px with the eager smooth max (~380 GB).
HUGE_AREAS = [0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5]


def test_activation_bytes_extrapolate_exactly_for_a_convolution():
    """A 1×1 convolution keeps its input (3·H·W floats per image) and its weight (once) for
    the backward: the bytes measured at the two small probe sizes extrapolate to the exact
    count at 200×300."""
    model = nn.Conv2d(3, 4, 1, bias=False).eval()
    assert activation_bytes(model, torch.rand(3, 200, 300)) == (4 * 3 * 4, 3 * 200 * 300 * 4)
    assert activation_bytes(model, torch.rand(3, 40, 40)) == (4 * 3 * 4, 3 * 40 * 40 * 4)


def test_estimate_is_linear_in_masks_and_smaller_without_the_eager_taps():
    model, x = TinyConvNet().eval(), torch.rand(2, 3, 64, 64)
    config = replace(MethodConfig(), areas=[0.1])
    one = estimate_memory(model, x, 1, config, False)
    three = estimate_memory(model, x, 3, config, False)
    assert three.total - one.total == 2 * one.per_mask
    shared, _ = activation_bytes(model, x[0])
    kernel = 9**2 * 7 * 7 * 4  # the smooth max's (2r+1)²×step×step weights
    assert one.fixed - FIT_OVERHEAD - shared - kernel == 2 * config.num_levels * 3 * 64 * 64 * 4
    gaussian = estimate_memory(model, x, 1, replace(config, smoothing="gaussian"), False)
    taps = 9**2  # radius 1 + ⌈21/7⌉ = 4 cells each way at step 7, σ 21
    grid = ((10 + 2 * 3) * 7) ** 2  # ⌈64/7⌉ cells + ⌈21/7⌉ each side, 7 px a cell
    assert one.per_mask - gaussian.per_mask == taps * 4 * grid * 4


def test_check_memory_refuses_what_does_not_fit_and_says_how_many_masks_would():
    room = available_memory(torch.device("cpu"))
    assert room is not None and room > 0
    check_memory(MemoryEstimate(fixed=0, per_mask=1, masks=10), torch.device("cpu"), (8, 8))
    too_big = MemoryEstimate(fixed=room // 2, per_mask=room // 8, masks=16)
    with pytest.raises(
        UsageError, match=r"explaining 16 mask\(s\) of 8×8 px .* explain at most [34] mask"
    ):
        check_memory(too_big, torch.device("cpu"), (8, 8))


@pytest.mark.slow
def test_the_api_refuses_a_chunk_that_cannot_fit_before_any_work():
    x = torch.rand(2, 3, 4096, 4096)
    with pytest.raises(UsageError, match=r"needs about \d+\.\d GiB .*smaller images"):
        extremal_perturbation(TinyConvNet().eval(), x, 0, HUGE_AREAS, compile=False, progress=False)


@pytest.mark.slow
def test_a_job_over_huge_images_exits_2_with_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    write_images(tmp_path / "images", 2)
    code = main(
        [
            "run",
            f"model={TINY_MODEL}",
            f"data={tmp_path / 'images'}",
            "data.size=4096",
            f"areas=[{','.join(map(str, HUGE_AREAS))}]",
            "trainer.compile=false",
            "data.targets=0",  # no forward pass at 4096² px to find the top class
            "logger=none",
            f"output_dir={tmp_path / 'out'}",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "GiB" in err and "data.size=" in err
    assert not (tmp_path / "out" / "chunks").exists()  # nothing was optimised


# --- models and sizes the probes cannot take (#24 item 5) --------------------------------------


def test_a_vit_that_takes_one_size_only_is_measured_at_its_size():
    """torchvision's ViT asserts its image size ("Expected 128 but got 32"): the reduced
    probes fail, so its activations are measured at the real size, not a crash."""
    import torchvision

    vit = torchvision.models.vit_b_16(image_size=128, weights=None).eval()
    x = torch.rand(1, 3, 128, 128)
    shared, per_image = activation_bytes(vit, x[0])
    assert per_image > 128 * 128 * 3 * 4  # at least its input, at full size
    estimate = estimate_memory(vit, x, 2, replace(MethodConfig(), areas=[0.1, 0.2]), False)
    assert estimate.total > FIT_OVERHEAD + 2 * per_image


def test_non_square_images_below_the_models_minimum_side_when_reduced():
    """The demo CNN refuses sides < 32 px: a 128×40 image reduced to the 32 px probe is
    32×10, so the probes fail and the real size is measured instead."""
    from lightning_extremal.data.demo import load_demo_classifier

    demo = load_demo_classifier()
    image = torch.rand(3, 40, 128)
    with torch.no_grad():
        demo(image[None])  # the real size is fine
    shared, per_image = activation_bytes(demo, image)
    one = estimate_memory(demo, image[None], 1, MethodConfig(), False)
    assert per_image > 0 and one.per_mask > per_image


class OneImageAtATime(TinyConvNet):
    """Refuses batches of more than one image (the probes pass two at once)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) > 1:
            raise ValueError(f"one image at a time, got {len(x)}")
        return super().forward(x)


def test_a_model_the_probes_cannot_run_skips_the_check_with_one_line():
    x = torch.rand(1, 3, 32, 32)
    with pytest.warns(RuntimeWarning, match=r"^memory check skipped: .*one image at a time, got 2"):
        result = extremal_perturbation(OneImageAtATime().eval(), x, 0, [0.2], max_iter=2, **FAST)
    assert result.masks.shape == (1, 1, 32, 32)


@pytest.mark.parametrize("step, sigma", [(200, 21.0), (64, 21.0), (7, 60.0)])
def test_the_estimate_counts_the_whole_parameter_grid_and_the_taps(step, sigma):
    """The smooth max computes its (2r+1)² taps, r = 1 + ⌈σ/step⌉, over the whole parameter
    grid (⌈H/step⌉ cells and ⌈margin/step⌉ more each side, step px each): at step 200 on a
    64 px image that is 600² px, 32× the padded image (106² px). Measured peaks of such runs:
    benchmarks/RESULTS.md, "Memory estimate"."""
    model, x = TinyConvNet().eval(), torch.rand(1, 3, 64, 64)
    config = replace(MethodConfig(), step=step, sigma=sigma)
    eager = estimate_memory(model, x, 1, config, False)
    gaussian = estimate_memory(model, x, 1, replace(config, smoothing="gaussian"), False)
    radius = 1 + math.ceil(sigma / step)
    margin = math.ceil(sigma)
    extra = math.ceil(margin / step)
    grid = ((math.ceil(64 / step) + 2 * extra) * step) ** 2
    assert grid_pixels(64, 64, step, margin) == grid
    assert eager.per_mask - gaussian.per_mask == (2 * radius + 1) ** 2 * 4 * grid * 4
