"""Memory checked before work (#13 item 7): the estimate's parts against exact counts, and a
chunk that cannot fit refused at once with the fix, in the API and the job."""

from __future__ import annotations

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
)
from lightning_extremal.cli import main
from lightning_extremal.config import MethodConfig
from lightning_extremal.errors import UsageError
from tests.helpers import TINY_MODEL, TinyConvNet, write_images

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
    assert one.fixed - FIT_OVERHEAD - shared == 2 * config.num_levels * 3 * 64 * 64 * 4
    gaussian = estimate_memory(model, x, 1, replace(config, smoothing="gaussian"), False)
    taps = 9**2  # radius 1 + ⌈21/8⌉ = 4 cells each way at step 8, σ 21
    assert one.per_mask - gaussian.per_mask == taps * 4 * (64 + 2 * 21) ** 2 * 4


def test_check_memory_refuses_what_does_not_fit_and_says_how_many_masks_would():
    room = available_memory(torch.device("cpu"))
    assert room is not None and room > 0
    check_memory(MemoryEstimate(fixed=0, per_mask=1, masks=10), torch.device("cpu"), (8, 8))
    too_big = MemoryEstimate(fixed=room // 2, per_mask=room // 8, masks=16)
    with pytest.raises(
        UsageError, match=r"explaining 16 mask\(s\) of 8×8 px .* explain at most [34] mask"
    ):
        check_memory(too_big, torch.device("cpu"), (8, 8))


def test_the_api_refuses_a_chunk_that_cannot_fit_before_any_work():
    x = torch.rand(2, 3, 4096, 4096)
    with pytest.raises(UsageError, match=r"needs about \d+\.\d GiB .*smaller images"):
        extremal_perturbation(TinyConvNet().eval(), x, 0, HUGE_AREAS, compile=False, progress=False)


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
