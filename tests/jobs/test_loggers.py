"""Loggers of a run (jobs/loggers, jobs/fitting): W&B offline runs read back with wandb's own
reader (``wandb leet inspect --json``; ``wandb.Api()`` cannot read offline runs), files without
W&B, and logging failures that never lose the masks."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import Logger
from PIL import Image

from lightning_extremal.config import compose
from lightning_extremal.jobs.run.fail_soft import FailSoftLogger
from lightning_extremal.jobs.run.job import run_job
from lightning_extremal.jobs.run.metrics import job_metrics
from tests.helpers import AREAS, NUM_IMAGES, read_wandb_run
from tests.helpers import run_args as _args

ROOT = Path(__file__).resolve().parents[2]


def _run_dirs(out: Path) -> list[Path]:
    return sorted((out / "wandb").glob("offline-run-*"))


# --- W&B end to end -----------------------------------------------------------------------------


@pytest.mark.slow
def test_wandb_offline_run_has_mask_images_scalars_and_table(
    shapes, tmp_path, offline_wandb, capsys
):
    out = tmp_path / "job"
    cfg = compose(
        _args(
            shapes,
            out,
            "max_iter=12",
            "logger=wandb",
            "logger.mask_every_n_steps=4",
            "trainer.log_every_n_steps=2",
        )
    )
    run_job(cfg)
    (run_dir,) = _run_dirs(out)
    printed = capsys.readouterr()
    assert f"wandb sync {run_dir}" in printed.out  # the printed command names the run folder
    assert list(run_dir.glob("run-*.wandb"))
    run = read_wandb_run(run_dir)
    assert run["run"]["run_group"] == "job" and run["exit"] is not None
    rows = run["history"]
    summary_rows = json.loads((out / "summary.json").read_text())["results"]
    # Where the masks started, in every summary row and in the run's config.
    assert {r["start"] for r in summary_rows} == {"grad_cam:features"}
    assert run["config"]["start"] == "grad_cam:features"

    assert "anonymous" not in printed.err  # no wandb warning on every run
    info = run["run"]
    assert re.fullmatch(r"job-[0-9a-f]{6}", info["display_name"])  # one run for the job
    assert info["job_type"] == "run"
    assert {"input", "preserve", "TinyConvNet"} <= set(info["tags"])

    # Mask images under one shared key (a list, one per pair) at W&B steps = optimisation
    # steps, uint8, not black, with the step, area and achieved area drawn above the masks
    # (a band of dark text pixels).
    frames = [(r["_step"], r["trainer/global_step"], r) for r in rows if "masks.filenames" in r]
    assert [step for step, _, _ in frames] == [0, 4, 8, 12]
    assert all(step == global_step for step, global_step, _ in frames)
    for _, _, row in frames:
        assert row["masks.count"] == NUM_IMAGES
        for path in row["masks.filenames"]:
            with Image.open(run_dir / "files" / path) as png:
                pixels = np.asarray(png.convert("RGB"))
            assert pixels.dtype == np.uint8 and pixels.std() > 0
            band = pixels[:30]  # above the first row of tiles (32 px enlarged to 96)
            assert pixels.shape[0] > 2 * 96 + 30 and (band.max(axis=2) < 100).sum() > 20
    for name in ("shape0", "shape1"):
        # Captions name the pair and its class (the shapes' classes are their ids: no names).
        target = next(r["target"] for r in summary_rows if r["image"] == name)
        captions = [
            c for _, _, row in frames for c in row["masks.captions"] if c.startswith(f"{name}:")
        ]
        assert len(captions) == 4 and all(
            c.startswith(f"{name}: {target}, step ") for c in captions
        )
        gifs = [c for r in rows for c in r.get("mask_evolution.captions", ())]
        assert f"{name}: {target}" in gifs  # the GIF
        assert (out / "mask_evolution" / f"{name}.gif").is_file()
    assert not [k for r in rows for k in r if "shape" in k]  # no key per image

    # Scalar histories for every area (module: reward, area loss, achieved area, λ; callback:
    # mask change) and the quality scores.
    for area in AREAS:
        for what in ("reward", "area_loss", "achieved_area", "area_error", "mask_change"):
            values = [r[f"area_{area:g}/{what}"] for r in rows if f"area_{area:g}/{what}" in r]
            assert len(values) >= 3 and all(math.isfinite(v) for v in values), (area, what)
    for what in ("lambda", "reward", "achieved_area", "area_error"):  # over all areas
        assert len([r for r in rows if what in r]) >= 3, what
    summary = json.loads((out / "summary.json").read_text())
    # What a sweep can optimise is in the run's summary, equal to summary.json's values.
    metrics = job_metrics(summary)
    assert {"reward", "achieved_area", "area_error", "quality/iou"} <= set(metrics)
    assert {k: run["summary"][k] for k in metrics} == pytest.approx(metrics)
    assert run["summary"]["quality/iou"] == pytest.approx(summary["quality"]["iou"])
    assert run["summary"]["quality/pointing"] == pytest.approx(summary["quality"]["pointing"])
    convergence = summary["convergence"]
    assert run["summary"]["convergence/not_converged"] == (
        convergence["masks"] - convergence["converged"]
    )
    assert run["summary"]["convergence/converged_fraction"] == pytest.approx(
        convergence["converged"] / convergence["masks"]
    )

    # The final table: one row per image × area, with image/overlay/mask images.
    assert run["summary"]["final/masks.nrows"] == NUM_IMAGES * len(AREAS)
    (artifact,) = [a for a in run["artifacts"] if a["type"] == "run_table"]
    entries = {e["path"]: e for e in artifact["manifest"]["contents"]}
    table_entry = next(e for p, e in entries.items() if p.endswith(".table.json"))
    table = json.loads(Path(table_entry["local_path"]).read_text())
    assert len(table["data"]) == NUM_IMAGES * len(AREAS)
    columns = table["columns"]
    assert {
        "name", "target", "area", "reward", "achieved_area", "converged", "steps", "iou",
        "pointing_hit", "image", "overlay", "mask",
    } <= set(columns)  # fmt: skip
    by_key = {(r["image"], r["area"]): r for r in summary["results"]}
    for row in table["data"]:
        cell = dict(zip(columns, row, strict=True))
        expected = by_key[(cell["name"], cell["area"])]
        assert cell["steps"] == 12 and cell["converged"] == expected["converged"]
        assert cell["iou"] == pytest.approx(expected["iou"])
        assert cell["pointing_hit"] == expected["pointing_hit"]
    assert {(row[columns.index("name")], row[columns.index("area")]) for row in table["data"]} == {
        (f"shape{i}", a) for i in range(NUM_IMAGES) for a in AREAS
    }
    overlay = table["data"][0][columns.index("overlay")]
    assert overlay["_type"] == "image-file"
    with Image.open(entries[overlay["path"]]["local_path"]) as png:
        assert np.asarray(png).std() > 0


@pytest.mark.slow
def test_two_jobs_in_one_process_are_two_wandb_runs(shapes, tmp_path, offline_wandb):
    ids = []
    for n in range(2):
        out = tmp_path / f"job{n}"
        run_job(
            compose(
                _args(
                    shapes,
                    out,
                    "max_iter=3",
                    "logger=wandb",
                    "logger.final_table=false",
                    "logger.mask_every_n_steps=0",
                )
            )
        )
        (run_dir,) = _run_dirs(out)
        run = read_wandb_run(run_dir)
        assert run["exit"] is not None  # finished (wandb.finish) before the next one starts
        assert run["run"]["run_group"] == f"job{n}"
        ids.append(run["run"]["run_id"])
    assert len(set(ids)) == 2


QUICK_WANDB = (
    "max_iter=2",
    "logger=wandb",
    "logger.final_table=false",
    "logger.mask_every_n_steps=0",
)


@pytest.mark.slow
def test_wandb_settings_of_the_shell_apply_and_config_keys_beat_them(
    shapes, tmp_path, offline_wandb, monkeypatch
):
    elsewhere = tmp_path / "elsewhere"
    shell = {
        "WANDB_DIR": str(elsewhere),
        "WANDB_PROJECT": "shell-project",
        "WANDB_RUN_GROUP": "shell-group",
        "WANDB_JOB_TYPE": "shell-type",
        "WANDB_TAGS": "shell-tag,second",
    }
    for name, value in shell.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "job"
    run_job(compose(_args(shapes, out, *QUICK_WANDB)))
    assert not (out / "wandb").exists()  # $WANDB_DIR replaces the output folder
    (first,) = (elsewhere / "wandb").glob("offline-run-*")
    info = read_wandb_run(first)["run"]
    assert (info["project"], info["run_group"], info["job_type"]) == (
        "shell-project",
        "shell-group",
        "shell-type",
    )
    assert {"input", "preserve", "TinyConvNet", "shell-tag", "second"} <= set(info["tags"])

    keys = ("logger.project=cli-project", "logger.group=cli-group", "logger.job_type=cli-type")
    run_job(compose(_args(shapes, tmp_path / "job2", *QUICK_WANDB, *keys, "logger.tags=[mine]")))
    (second,) = set((elsewhere / "wandb").glob("offline-run-*")) - {first}
    info = read_wandb_run(second)["run"]
    assert (info["project"], info["run_group"], info["job_type"]) == (
        "cli-project",
        "cli-group",
        "cli-type",
    )
    assert {"mine", "shell-tag", "input"} <= set(info["tags"])


def test_wandb_mode_precedence(monkeypatch):
    from lightning_extremal.config import LoggerConfig
    from lightning_extremal.engine.loggers import wandb_mode

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", "/nonexistent")
    monkeypatch.setenv("HOME", "/nonexistent")
    for env, offline, mode in [
        ("dryrun", None, "offline"),
        ("disabled", None, "disabled"),
        ("online", None, "online"),
        ("online", True, "offline"),  # the config key beats the shell
        ("offline", False, "online"),
        ("", None, "offline"),  # no login: offline
    ]:
        monkeypatch.setenv("WANDB_MODE", env)
        assert wandb_mode(LoggerConfig(offline=offline)) == mode, (env, offline)


# --- without W&B: files -------------------------------------------------------------------------


@pytest.mark.slow
def test_without_wandb_callbacks_write_pngs_gif_and_csv(csv_job):
    for i in range(NUM_IMAGES):
        frames = sorted(p.name for p in (csv_job / "mask_evolution" / f"shape{i}").iterdir())
        assert frames == ["step_000000.png", "step_000005.png", "step_000010.png"]
        with Image.open(csv_job / "mask_evolution" / f"shape{i}.gif") as gif:
            assert gif.n_frames == 3
    with open(csv_job / "final_overlays" / "final.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == NUM_IMAGES * len(AREAS)
    for row in rows:
        with Image.open(csv_job / "final_overlays" / row["overlay"]) as png:
            assert np.asarray(png).std() > 0
    metrics = next((csv_job / "csv").rglob("metrics.csv")).read_text().splitlines()[0].split(",")
    assert {f"area_{a:g}/mask_change" for a in AREAS} <= set(metrics)
    assert {"quality/iou", "quality/pointing"} <= set(metrics)
    summary = json.loads((csv_job / "summary.json").read_text())
    assert set(summary["quality"]) == {"iou", "pointing", "pairs"}
    assert all("iou" in r and "pointing_hit" in r and r["steps"] == 10 for r in summary["results"])
    for row in rows:  # the final table's steps, IoU and pointing hit, as in the summary
        expected = next(
            r
            for r in summary["results"]
            if r["image"] == row["name"] and r["area"] == float(row["area"])
        )
        assert int(row["steps"]) == 10 and row["pointing_hit"] == str(expected["pointing_hit"])
        assert float(row["iou"]) == pytest.approx(expected["iou"])


# --- logging failures never lose the masks -------------------------------------------------------


class RaisingLogger(Logger):
    """A logger whose ``log_metrics`` raises after ``fail_after`` calls."""

    def __init__(self, fail_after: int = 2) -> None:
        super().__init__()
        self.calls = 0
        self.fail_after = fail_after

    @property
    def name(self) -> str:
        return "raising"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.calls += 1
        if self.calls > self.fail_after:
            raise OSError("disk full (simulated)")


def _assert_outputs(out: Path, max_iter: int) -> None:
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["results"]) == NUM_IMAGES * len(AREAS)
    assert all(r["steps"] == max_iter for r in summary["results"])
    masks = torch.load(out / "masks.pt", weights_only=False)["masks"]
    assert masks.shape == (NUM_IMAGES, len(AREAS), 32, 32)
    assert masks.std() > 0  # optimised, not the initial all-ones


@pytest.mark.slow
def test_logger_raising_mid_run_is_a_warning_and_keeps_the_masks(shapes, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    logger = RaisingLogger(fail_after=2)
    monkeypatch.setattr(
        "lightning_extremal.jobs.run.fitting.make_logger", lambda *a, **k: FailSoftLogger(logger)
    )
    out = tmp_path / "job"
    with pytest.warns(RuntimeWarning, match="RaisingLogger failed in log_metrics.*disk full"):
        run_job(
            compose(_args(shapes, out, "max_iter=8", "logger=csv", "trainer.log_every_n_steps=1"))
        )
    assert logger.calls == 3  # never called again after the failure
    _assert_outputs(out, 8)


@pytest.mark.slow
def test_unwrapped_logger_failure_reruns_the_chunk_without_logger(shapes, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(
        "lightning_extremal.jobs.run.fitting.make_logger", lambda *a, **k: RaisingLogger(1)
    )
    out = tmp_path / "job"
    with pytest.warns(RuntimeWarning, match="running the chunk again without"):
        run_job(
            compose(_args(shapes, out, "max_iter=6", "logger=csv", "trainer.log_every_n_steps=1"))
        )
    _assert_outputs(out, 6)


@pytest.mark.slow
def test_wandb_that_cannot_start_is_a_warning(shapes, tmp_path, offline_wandb, monkeypatch):
    import wandb

    def refuse(*args, **kwargs):
        raise PermissionError("W&B directory is not writable (simulated)")

    monkeypatch.setattr(wandb, "init", refuse)
    out = tmp_path / "job"
    with pytest.warns(RuntimeWarning, match="WandbLogger failed.*not writable"):
        run_job(compose(_args(shapes, out, "max_iter=4", "logger=wandb")))
    _assert_outputs(out, 4)
    assert (out / "mask_evolution" / "shape0" / "step_000000.png").is_file()  # files instead


@pytest.mark.slow
def test_callback_logging_failure_falls_back_to_files(shapes, tmp_path, offline_wandb, monkeypatch):
    import wandb

    def broken_image(*args, **kwargs):
        raise ValueError("cannot encode image (simulated)")

    monkeypatch.setattr(wandb, "Image", broken_image)
    out = tmp_path / "job"
    with pytest.warns(RuntimeWarning) as caught:
        run_job(
            compose(
                _args(
                    shapes,
                    out,
                    "max_iter=4",
                    "logger=wandb",
                    "logger.mask_every_n_steps=2",
                    "trainer.log_every_n_steps=1",
                )
            )
        )
    messages = " | ".join(str(w.message) for w in caught)
    assert "MaskEvolution: logging mask images failed" in messages
    assert "FinalOverlays: logging the final table failed" in messages
    _assert_outputs(out, 4)
    frames = sorted(p.name for p in (out / "mask_evolution" / "shape0").iterdir())
    assert frames == ["step_000000.png", "step_000002.png", "step_000004.png"]
    assert (out / "final_overlays" / "final.csv").is_file()
    (run_dir,) = _run_dirs(out)
    rows = read_wandb_run(run_dir)["history"]  # the scalars still reached W&B
    assert any("area_0.1/reward" in r for r in rows) and any("quality/iou" in r for r in rows)


@pytest.mark.slow
def test_table_run_reads_back_with_wandbs_reader(tmp_path, offline_wandb):
    from lightning_extremal.jobs.run.fail_soft import log_table_run

    rows = [{"method": "center", "all": 50.0}, {"method": "grad_cam", "all": 75.0}]
    summary = {"pointing/center/all": 50.0, "pointing/grad_cam/all": 75.0}
    run_dir = log_table_run(
        "bench", "benchmark", tmp_path, {"k": 1}, "pointing/table", rows, summary
    )
    assert run_dir is not None
    run = read_wandb_run(Path(run_dir))
    assert run["exit"] is not None
    assert run["summary"]["pointing/grad_cam/all"] == 75.0
    assert any("pointing/table" in str(key) for row in run["history"] for key in row)
