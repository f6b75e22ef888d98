"""The observing callbacks (``lightning_extremal.callbacks``) through the Python API, without a
logger: mask evolution, final overlays, convergence and early stop."""

from __future__ import annotations

import pytest
import torch
from lightning_extremal.callbacks import ConvergenceMonitor, FinalOverlays, MaskEvolution

from lightning_extremal import extremal_perturbation
from lightning_extremal.config import compose, validate_logger
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
