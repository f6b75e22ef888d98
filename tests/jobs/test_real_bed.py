"""The real bed end to end: ``run data=photos model=efficientnet_lite0`` scores pointing and
IoU against the photos' boxes and names ImageNet classes; ``benchmark pointing
dataset=photos`` runs. Small: 64 px inputs, two steps. Needs the ``real`` extra."""

from __future__ import annotations

import json
import logging

import pytest

from tests.helpers import needs_real_extra, run_job_on_one_thread

pytestmark = needs_real_extra


@pytest.mark.slow
def test_run_on_the_photos_scores_their_boxes_and_names_the_classes(tmp_path, caplog, monkeypatch):
    from lightning_extremal.modules import image_masks

    monkeypatch.setattr(image_masks, "_SAID", set())  # said once per process: maybe already
    caplog.set_level(logging.INFO, logger="lightning_extremal")
    out = run_job_on_one_thread(
        [
            "data=photos",
            "model=efficientnet_lite0",
            "data.size=64",
            "method.max_iter=2",
            "method.areas=[0.1]",
            "logger=none",
            "logger.mask_every_n_steps=0",
            "trainer.progress=false",
            f"output_dir={tmp_path / 'run'}",
        ]
    )
    summary = json.loads((out / "summary.json").read_text())
    rows = {row["image"]: row for row in summary["results"]}
    assert rows["chelsea"]["target"] == 285 and rows["chelsea"]["target_name"] == "Egyptian cat"
    assert rows["grace_hopper"]["target_name"] == "military uniform"  # the label, not top-1
    assert summary["quality"]["pairs"] == len(rows) and 0 <= summary["quality"]["pointing"] <= 1
    assert all(row["pointing_hit"] is not None for row in rows.values())
    assert (out / "overlays" / "chelsea.png").is_file()
    assert "warm start: Grad-CAM at layer 'model._bn1'" in caplog.text


def test_benchmark_pointing_on_the_photos(tmp_path, capsys):
    from lightning_extremal.cli import main

    out = tmp_path / "bench"
    args = [
        "benchmark", "pointing", "dataset=photos", "model=efficientnet_lite0",
        "methods=[center,grad_cam]", "limit=2", "logger=none", f"output_dir={out}",
    ]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| Photos efficientnet_lite0 (All/Diff) |" in printed and "| Grad-CAM |" in printed
