"""One W&B run per job (issue #26): a job of three chunks read back with wandb's own reader
(``wandb leet inspect --json``): one run, every chunk's rows at increasing steps, the starting
state at step 0, media under shared keys, media files inside the run folder, and a resumed
job as a second run of the same group whose summary is the whole job's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lightning_extremal.config import compose
from lightning_extremal.jobs.run.job import run_job
from lightning_extremal.jobs.run.metrics import job_metrics
from tests.helpers import TINY_MODEL, read_wandb_run

CHUNKS = 3
MAX_ITER = 4
#: The keys of the job's media: one per kind of picture, whatever the number of images.
MEDIA_KEYS = {"masks", "mask_evolution", "final/masks"}


def _job_args(out: Path) -> list[str]:
    """Three synthetic images, one per chunk; frames every 2 steps, scalars every 3."""
    return [
        f"model={TINY_MODEL}",
        "data=synthetic",
        f"data.num_images={CHUNKS}",
        "data.size=32",
        "data.batch_size=1",
        f"max_iter={MAX_ITER}",
        "areas=[0.1,0.3]",
        "step=4",
        "sigma=8",
        "logger=wandb",
        "logger.mask_every_n_steps=2",
        "trainer.log_every_n_steps=3",
        "trainer.progress=false",
        "trainer.accelerator=cpu",
        f"output_dir={out}",
    ]


def _runs(out: Path) -> list[Path]:
    return sorted((out / "wandb").glob("offline-run-*"))


def _media_keys(rows: list[dict]) -> set[str]:
    return {key.rsplit(".", 1)[0] for row in rows for key in row if key.endswith("._type")}


@pytest.mark.slow
def test_a_three_chunk_job_is_one_wandb_run(tmp_path, offline_wandb):
    out = tmp_path / "job"
    run_job(compose(_job_args(out)))
    (run_dir,) = _runs(out)  # one run for the job, not one per chunk
    run = read_wandb_run(run_dir)
    rows = run["history"]
    summary = json.loads((out / "summary.json").read_text())
    ids = sorted({r["image"] for r in summary["results"]})
    assert len(ids) == CHUNKS and run["run"]["run_group"] == "job"

    # Every chunk's rows, one after the other: chunk c's optimisation step t at job step
    # c·(MAX_ITER + 1) + t, which is W&B's own step.
    span = MAX_ITER + 1
    for row in rows:
        assert row["_step"] == row["job/step"] == row["chunk"] * span + row["trainer/global_step"]
    assert {row["chunk"] for row in rows} == set(range(CHUNKS))
    steps = [row["_step"] for row in rows]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)

    for chunk in range(CHUNKS):
        mine = {row["trainer/global_step"]: row for row in rows if row["chunk"] == chunk}
        # The starting state at step 0: the scalars (Lightning writes its first at step 2)
        # and the first frame, before any optimisation step.
        start = mine[0]
        assert {"reward", "achieved_area", "area_error", "area_0.1/reward", "lambda"} <= set(start)
        assert start["masks.count"] == 1 and "step 0:" in start["masks.captions"][0]
        assert sorted(t for t, row in mine.items() if "masks.count" in row) == [0, 2, 4]
        # The chunk's image names its frames, its GIF and its table at its last step.
        image = start["masks.captions"][0].split(":")[0]
        assert image == ids[chunk]
        last = mine[MAX_ITER]
        assert last["mask_evolution.captions"][0].startswith(f"{image}: ")
        assert last["final/masks.nrows"] == 2  # one row per area

    # Media under shared keys only: never a key per image.
    assert _media_keys(rows) == MEDIA_KEYS
    assert not [key for row in rows for key in row if any(i in key for i in ids)]

    # The media files are inside the run folder: frames and GIFs (run files), the tables'
    # JSON and image cells (what wandb sync uploads: staged in the run folder).
    for row in rows:
        for name in row.get("masks.filenames", []):
            assert (run_dir / "files" / name).is_file()
        for video in row.get("mask_evolution.videos", []):
            assert (run_dir / "files" / video["path"]).is_file()
    tables = [a for a in run["artifacts"] if a["type"] == "run_table"]
    assert len(tables) == CHUNKS
    for artifact in tables:
        entries = artifact["manifest"]["contents"]
        pngs = [e for e in entries if e["path"].endswith(".png")]
        assert len(pngs) == 1 + 2 * 2  # the image (once), per area the overlay and the mask
        for entry in entries:
            staged = Path(entry["local_path"])
            assert staged.is_file() and staged.is_relative_to(run_dir), staged

    # The run's summary is the whole job's (not the last chunk's).
    metrics = job_metrics(summary)
    assert {k: run["summary"][k] for k in metrics} == pytest.approx(metrics)

    # A resumed job (one chunk lost): a second run in the same group, logging only the chunk
    # it computes, whose summary is again the whole job's.
    lost = out / "chunks" / "chunk-00001.pt"
    lost.unlink()
    run_job(compose(_job_args(out)))
    (again,) = set(_runs(out)) - {run_dir}
    resumed = read_wandb_run(again)
    assert resumed["run"]["run_group"] == "job"
    assert resumed["run"]["run_id"] != run["run"]["run_id"]
    assert {row["chunk"] for row in resumed["history"]} == {1}
    assert min(row["_step"] for row in resumed["history"]) == 0
    metrics = job_metrics(json.loads((out / "summary.json").read_text()))
    assert {k: resumed["summary"][k] for k in metrics} == pytest.approx(metrics)
