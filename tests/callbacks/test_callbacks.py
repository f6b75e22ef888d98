"""The observing callbacks (``lightning_extremal.callbacks``) through the Python API, without a
logger: mask evolution, final overlays, convergence and early stop."""

from __future__ import annotations

import math
import re

import pytest
import torch
from lightning_extremal.callbacks import (
    ConvergenceMonitor,
    FinalOverlays,
    MaskEvolution,
    StepProgressBar,
)
from lightning_extremal.callbacks.mask_evolution import frame_grid, frame_labels
from PIL import Image

from lightning_extremal import extremal_perturbation
from lightning_extremal.config import compose, validate_logger
from lightning_extremal.viz import LABEL_COLUMN_WIDTH
from tests.helpers import AREAS, TinyConvNet
from tests.helpers import random_images as _images


def test_image_mask_callbacks_skip_channel_and_grid_masks(tmp_path):
    from lightning_extremal.callbacks import ConvergenceMonitor, FinalOverlays, MaskEvolution

    for kind in ("channel", "layer-spatial"):
        evolution = MaskEvolution(every_n_steps=2, out_dir=tmp_path / kind)
        overlays = FinalOverlays(out_dir=tmp_path / kind)
        monitor = ConvergenceMonitor()
        extremal_perturbation(
            TinyConvNet(),
            _images(2),
            0,
            [0.5],
            layer="features.2",
            kind=kind,
            max_iter=4,
            progress=False,
            callbacks=[evolution, overlays, monitor],
        )
        assert not evolution.active and not evolution.gifs and overlays.rows == []
        assert monitor.steps == 4
    assert not list(tmp_path.rglob("*.png")) and not list(tmp_path.rglob("*.gif"))


def test_callbacks_work_through_the_api_without_a_logger(tmp_path):
    model, images = TinyConvNet(), torch.rand(2, 3, 32, 32)
    evolution = MaskEvolution(every_n_steps=3, out_dir=tmp_path / "evo", names=["a", "b"])
    final = FinalOverlays(out_dir=tmp_path / "final", class_names=list("vwxyz"))
    monitor = ConvergenceMonitor()
    result = extremal_perturbation(
        model,
        images,
        [1, 2],
        AREAS,
        max_iter=7,
        sigma=6.0,
        step=4,
        progress=False,
        callbacks=[evolution, final, monitor],
    )
    assert evolution.steps == [0, 3, 6, 7]
    assert sorted(p.name for p in (tmp_path / "evo").glob("*.gif")) == ["a.gif", "b.gif"]
    assert len(list((tmp_path / "evo" / "a").glob("step_*.png"))) == 4
    assert len(final.rows) == 2 * len(AREAS)
    assert [r["target_name"] for r in final.rows] == ["w", "w", "x", "x"]
    # The table's numbers are the API's final numbers.
    assert [r["reward"] for r in final.rows] == pytest.approx(
        result.rewards.flatten().tolist(), abs=1e-5
    )
    assert monitor.steps == 7 and monitor.stopped_at is None
    assert all(r["steps"] == 7 and r["iou"] is None for r in final.rows)  # no ground truth
    assert all(r["pointing_hit"] is None for r in final.rows)
    with Image.open(tmp_path / "evo" / "a.gif") as gif:  # labelled frames keep one size
        assert gif.n_frames == 4
        sizes = set()
        for index in range(gif.n_frames):
            gif.seek(index)
            sizes.add(gif.size)
    assert len(sizes) == 1


def test_final_overlays_score_pairs_with_ground_truth(tmp_path):
    truth = torch.zeros(32, 32, dtype=torch.bool)
    truth[4:20, 4:20] = True
    final = FinalOverlays(out_dir=tmp_path, truths=[truth, None])
    extremal_perturbation(
        TinyConvNet(), _images(2, 32), 0, AREAS, max_iter=3, sigma=6.0, step=4, progress=False,
        callbacks=[final],
    )  # fmt: skip
    scored = [r for r in final.rows if r["name"] == "pair0"]
    assert all(0 <= r["iou"] <= 1 and isinstance(r["pointing_hit"], bool) for r in scored)
    assert all(r["iou"] is None for r in final.rows if r["name"] == "pair1")


def test_frame_labels_are_drawn_above_each_area(tmp_path):
    overlays, views = torch.full((2, 3, 16, 16), 0.5), torch.full((1, 2, 3, 16, 16), 0.5)
    plain = frame_grid(overlays, views)
    labelled = frame_grid(overlays, views, frame_labels(50, [0.1, 0.3], [0.12, 0.29]))
    scale = math.ceil(LABEL_COLUMN_WIDTH / 16)
    band = labelled.shape[1] - scale * plain.shape[1]
    assert labelled.shape[2] == scale * plain.shape[2] and band > 0
    text = labelled[:, :band].amax(0) < 100  # dark pixels of text on white
    half = labelled.shape[2] // 2
    assert text[:, :half].sum() > 20 and text[:, half:].sum() > 20  # one label per column
    assert frame_labels(50, [0.1], [0.123]) == [["step 50", "area 0.1", "achieved 0.123"]]


def test_progress_bar_shows_reward_and_area_error_then_one_final_line(capsys, monkeypatch):
    reads = []
    read = StepProgressBar._read
    monkeypatch.setattr(
        StepProgressBar, "_read", lambda self, trainer: reads.append(trainer.global_step) or read(self, trainer)
    )  # fmt: skip
    extremal_perturbation(
        TinyConvNet(), _images(1, 32), 0, AREAS, max_iter=10, sigma=6.0, step=4, progress=True,
        log_every_n_steps=4,
    )  # fmt: skip
    err = capsys.readouterr().err
    states = [s for s in err.replace("\r", "\n").splitlines() if s.strip()]
    bars = [s for s in states if "/10 [" in s]
    assert any(re.search(r"reward=[-\d.e]+, area_err=[\d.e-]+\]", s) for s in bars)
    assert not any("loss=" in s for s in states)
    final = [s for s in states if "steps in" in s and not s.startswith("warm start")]
    assert len(final) == 1 and re.fullmatch(
        r"2 masks: 10 steps in [\d.]+s, reward=[-\d.e]+, area_err=[\d.e-]+", final[0]
    )
    assert reads == [4, 8, 10]  # at the logging interval and the last step, not every step


def test_early_stop_when_masks_stop_moving():
    model, images = TinyConvNet(), torch.rand(1, 3, 32, 32)
    monitor = ConvergenceMonitor(early_stop_tol=1.0, window=3, check_every=1)  # any change < 1
    result = extremal_perturbation(
        model, images, 1, [0.2], max_iter=40, sigma=6.0, step=4, progress=False, callbacks=[monitor]
    )
    assert monitor.stopped_at == 3  # changes are measured from step 1: 3 in a row at step 3
    assert monitor.steps == 4  # step 3 itself still runs
    assert result.history["achieved_area"][0, 0, :4].min() > 0
    assert result.history["achieved_area"][0, 0, 4:].abs().sum() == 0  # no steps after the stop


def test_mask_evolution_names_mismatch_falls_back(tmp_path):
    evolution = MaskEvolution(every_n_steps=10, out_dir=tmp_path, names=["only-one"])
    with pytest.warns(RuntimeWarning, match="got 1 names for 2"):
        extremal_perturbation(
            TinyConvNet(),
            torch.rand(2, 3, 32, 32),
            0,
            [0.2],
            max_iter=2,
            sigma=6.0,
            step=4,
            progress=False,
            callbacks=[evolution],
        )
    assert sorted(p.name for p in tmp_path.glob("*.gif")) == ["pair0.gif", "pair1.gif"]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: MaskEvolution(every_n_steps=0), "every_n_steps"),
        (lambda: ConvergenceMonitor(early_stop_tol=-1), "early_stop_tol"),
        (lambda: ConvergenceMonitor(window=0), "window"),
        (
            lambda: validate_logger(compose(["logger.mask_every_n_steps=-1"]).logger),
            "mask_every_n_steps",
        ),
        (lambda: validate_logger(compose(["logger.early_stop_tol=0"]).logger), "early_stop_tol"),
    ],
)
def test_bad_callback_settings_name_the_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_starting_state_writes_step_0_before_lightnings_first_write(tmp_path):
    import csv

    from lightning.pytorch.loggers import CSVLogger
    from lightning_extremal.callbacks import StartingState

    logger = CSVLogger(tmp_path, name="csv")
    extremal_perturbation(
        TinyConvNet(), _images(1, 32), 0, AREAS, max_iter=7, sigma=6.0, step=4, progress=False,
        logger=logger, log_every_n_steps=3, callbacks=[StartingState()],
    )  # fmt: skip
    with open(f"{logger.log_dir}/metrics.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["reward"]]
    assert [int(r["step"]) for r in rows] == [0, 2, 5]  # Lightning alone: 2 and 5
    first = rows[0]
    assert all(first[f"area_{a:g}/reward"] for a in AREAS) and float(first["lambda"]) > 0
