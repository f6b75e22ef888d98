"""Observability: the W&B/file callbacks, fail-soft logging, quality scores, sweeps, the report.

W&B runs are offline into ``tmp_path`` and read back with wandb's own reader
(``wandb leet inspect --json``; ``wandb.Api()`` cannot read offline runs).
"""

from __future__ import annotations

import ast
import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import Logger
from lightning_extremal.callbacks import ConvergenceMonitor, FinalOverlays, MaskEvolution
from PIL import Image

from lightning_extremal import extremal_perturbation
from lightning_extremal.cli import main
from lightning_extremal.config import compose, validate_logger
from lightning_extremal.data.synthetic import render_sample
from lightning_extremal.jobs.loggers import FailSoftLogger
from lightning_extremal.jobs.run import run_job
from lightning_extremal.ops.pointing import (
    ep_saliency,
    hit_at_point,
    mask_quality,
    region_iou,
    saliency_point,
    summarize_quality,
    top_area_region,
)
from tests.tiny_models import TinyConvNet

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = "tests.tiny_models:TinyConvNet"
AREAS = (0.1, 0.3)
NUM_IMAGES = 2


@pytest.fixture(autouse=True)
def one_thread():
    """The test machines share 2 cores: torch's default thread pool oversubscribes them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> tuple[Path, Path]:
    """Two synthetic-shape images (48 px) and their ground-truth object masks."""
    root = tmp_path_factory.mktemp("shapes")
    (root / "images").mkdir()
    (root / "truth").mkdir()
    for i in range(NUM_IMAGES):
        sample = render_sample(i, size=48)
        pixels = (sample.image.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
        Image.fromarray(pixels).save(root / "images" / f"shape{i}.png")
        Image.fromarray(sample.masks.any(0).numpy().astype("uint8") * 255).save(
            root / "truth" / f"shape{i}.png"
        )
    return root / "images", root / "truth"


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch) -> Path:
    """W&B offline, every W&B folder (runs, artifact staging, cache, settings) under tmp_path."""
    home = tmp_path / "wandb_home"
    for name, sub in [
        ("WANDB_DIR", "dir"),
        ("WANDB_DATA_DIR", "data"),
        ("WANDB_CACHE_DIR", "cache"),
        ("WANDB_CONFIG_DIR", "config"),
    ]:
        (home / sub).mkdir(parents=True)
        monkeypatch.setenv(name, str(home / sub))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.chdir(ROOT)  # tests.tiny_models importable by the job
    return home


def _args(shapes, out: Path, *extra: str) -> list[str]:
    images, truth = shapes
    return [
        f"model={TINY_MODEL}",
        f"data={images}",
        f"data.ground_truth={truth}",
        "data.size=32",
        f"areas=[{AREAS[0]},{AREAS[1]}]",
        "trainer.progress=false",
        f"output_dir={out}",
        *extra,
    ]


def read_wandb_run(run_dir: Path) -> dict:
    """Records of an offline run through wandb's own reader: run info, history rows, summary,
    artifacts (``wandb leet inspect --json``)."""
    exe = Path(sys.executable).with_name("wandb")
    proc = subprocess.run(
        [str(exe), "leet", "inspect", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = {"run": None, "history": [], "summary": {}, "artifacts": [], "exit": None}
    for line in proc.stdout.splitlines():
        record = json.loads(line)
        kind = record.get("type")
        if kind == "run":
            out["run"] = record["run"]
        elif kind == "history":
            out["history"].append(record["history"]["item"])
        elif kind == "summary":
            out["summary"].update(record["summary"].get("update", {}))
        elif kind == "artifact":
            out["artifacts"].append(record["artifact"])
        elif kind == "exit":
            out["exit"] = record["exit"]
    return out


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
    printed = capsys.readouterr().out
    assert f"wandb sync {run_dir}" in printed  # the printed command names the run folder
    assert list(run_dir.glob("run-*.wandb"))
    run = read_wandb_run(run_dir)
    assert run["run"]["run_group"] == "job" and run["exit"] is not None
    rows = run["history"]

    # Mask images under stable keys at ≥ 2 distinct steps, uint8 and not black.
    for name in ("shape0", "shape1"):
        logged = [
            (r["trainer/global_step"], r[f"masks/{name}.path"])
            for r in rows
            if f"masks/{name}.path" in r
        ]
        assert sorted(s for s, _ in logged) == [0, 4, 8, 12]
        for _, path in logged:
            with Image.open(run_dir / "files" / path) as png:
                assert np.asarray(png).dtype == np.uint8 and np.asarray(png).std() > 0
        assert any(f"mask_evolution/{name}.path" in r for r in rows)  # the GIF
        assert (out / "mask_evolution" / f"{name}.gif").is_file()

    # Scalar histories for every area (module: reward, area loss, achieved area, λ; callback:
    # mask change) and the quality scores.
    for area in AREAS:
        for what in ("reward", "area_loss", "achieved_area", "mask_change"):
            values = [r[f"area_{area:g}/{what}"] for r in rows if f"area_{area:g}/{what}" in r]
            assert len(values) >= 3 and all(math.isfinite(v) for v in values), (area, what)
    assert len([r for r in rows if "lambda" in r]) >= 3
    summary = json.loads((out / "summary.json").read_text())
    assert run["summary"]["quality/iou"] == pytest.approx(summary["quality"]["iou"])
    assert run["summary"]["quality/pointing"] == pytest.approx(summary["quality"]["pointing"])

    # The final table: one row per image × area, with image/overlay/mask images.
    assert run["summary"]["final/masks.nrows"] == NUM_IMAGES * len(AREAS)
    (artifact,) = [a for a in run["artifacts"] if a["type"] == "run_table"]
    entries = {e["path"]: e for e in artifact["manifest"]["contents"]}
    table_entry = next(e for p, e in entries.items() if p.endswith(".table.json"))
    table = json.loads(Path(table_entry["local_path"]).read_text())
    assert len(table["data"]) == NUM_IMAGES * len(AREAS)
    columns = table["columns"]
    assert {"name", "target", "area", "reward", "achieved_area", "image", "overlay", "mask"} <= set(
        columns
    )
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


# --- without W&B: files --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def csv_job(shapes, tmp_path_factory) -> Path:
    """One job with the CSV logger (no image logger): everything goes to files."""
    out = tmp_path_factory.mktemp("csvjob") / "job"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_job(
            compose(
                _args(
                    shapes,
                    out,
                    "max_iter=10",
                    "logger=csv",
                    "logger.mask_every_n_steps=5",
                    "trainer.log_every_n_steps=2",
                )
            )
        )
    finally:
        torch.set_num_threads(threads)
    return out


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


def test_report_is_one_html_page_with_every_image(csv_job):
    assert main(["report", str(csv_job)]) == 0
    page = (csv_job / "report.html").read_text()
    assert 'src="http' not in page and 'src="/' not in page  # self-contained
    for i in range(NUM_IMAGES):
        assert f'id="pair-shape{i}"' in page
    assert page.count('<section class="pair"') == NUM_IMAGES
    # per pair: the image, one overlay per area, the evolution strip and GIF, the curves
    assert page.count("<img ") == NUM_IMAGES * (1 + len(AREAS) + 2 + 1)
    assert page.count('src="data:image/gif;base64,') == NUM_IMAGES


def test_report_errors_name_the_problem(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no run directory" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "chunks" in capsys.readouterr().err


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


def test_logger_raising_mid_run_is_a_warning_and_keeps_the_masks(shapes, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    logger = RaisingLogger(fail_after=2)
    monkeypatch.setattr(
        "lightning_extremal.jobs.fitting.make_logger", lambda *a, **k: FailSoftLogger(logger)
    )
    out = tmp_path / "job"
    with pytest.warns(RuntimeWarning, match="RaisingLogger failed in log_metrics.*disk full"):
        run_job(
            compose(_args(shapes, out, "max_iter=8", "logger=csv", "trainer.log_every_n_steps=1"))
        )
    assert logger.calls == 3  # never called again after the failure
    _assert_outputs(out, 8)


def test_unwrapped_logger_failure_reruns_the_chunk_without_logger(shapes, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(
        "lightning_extremal.jobs.fitting.make_logger", lambda *a, **k: RaisingLogger(1)
    )
    out = tmp_path / "job"
    with pytest.warns(RuntimeWarning, match="running the chunk again without"):
        run_job(
            compose(_args(shapes, out, "max_iter=6", "logger=csv", "trainer.log_every_n_steps=1"))
        )
    _assert_outputs(out, 6)


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


# --- callbacks through the Python API ------------------------------------------------------------


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


# --- quality scores ------------------------------------------------------------------------------


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


def test_ground_truth_of_demo_and_folders(shapes, monkeypatch):
    from lightning_extremal.data import sources
    from lightning_extremal.data.ground_truth import load_ground_truth, pair_truth

    two = render_sample(0, size=64, multi_object=True)  # 2–3 objects of distinct classes
    monkeypatch.setattr(sources, "demo_ground_truth", lambda directory=None: [two.masks])
    objects = sources.open_source("demo", 32, crop=True).truth(0)
    assert len(objects) == len(two.labels) and objects[0].shape == (32, 32)
    # The pair's own object when the labels name its target, else all objects.
    second = pair_truth(objects, two.labels, two.labels[1])
    assert torch.equal(second, objects[1])
    others = [c for c in range(6) if c not in two.labels]
    assert torch.equal(pair_truth(objects, two.labels, others[0]), torch.stack(objects).any(0))
    assert pair_truth(None, None, 0) is None

    images, truth = shapes
    found = load_ground_truth(str(truth), ["shape0", "missing"], size=32, crop=True)
    assert found[0][0].shape == (32, 32) and found[0][0].any() and found[1] is None
    with pytest.raises(ValueError, match="data.ground_truth must be a folder"):
        load_ground_truth(str(truth / "nope"), ["shape0"], size=32, crop=True)


# --- sweeps --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_grid_sweep_runs_offline_and_summarises_trials(shapes, tmp_path, offline_wandb, capsys):
    out = tmp_path / "sweep"
    code = main(
        [
            "sweep",
            str(ROOT / "configs" / "sweeps" / "areas_smoothing.yaml"),
            "--count",
            "2",
            *_args(
                shapes,
                out,
                "max_iter=3",
                "logger=wandb",
                "data.targets=top1",
                "logger.mask_every_n_steps=0",
                "logger.final_table=false",
            ),
        ]
    )
    assert code == 0
    with open(out / "sweep_summary.csv", newline="") as handle:
        trials = list(csv.DictReader(handle))
    assert sorted(t["trial"] for t in trials) == ["trial-000", "trial-001"]
    values = [float(t["quality/iou"]) for t in trials]
    assert values == sorted(values, reverse=True)  # best first (goal: maximize)
    assert {t["method.smoothing"] for t in trials} == {"maxconv", "gaussian"}  # the grid's first 2
    for t in trials:  # each trial ran with its parameters and reports its own metric
        summary = json.loads((Path(t["output_dir"]) / "summary.json").read_text())
        assert float(t["quality/iou"]) == pytest.approx(summary["quality"]["iou"])
        config = json.loads((Path(t["output_dir"]) / "config.json").read_text())
        assert config["method"]["smoothing"] == t["method.smoothing"]
        assert config["method"]["max_iter"] == 3  # the extra override wins
        assert config["method"]["areas"] == list(AREAS) and "areas(proposed" in t["overridden"]
    printed = capsys.readouterr().out
    assert "trial-000" in printed and "quality/iou" in printed and "wandb sync" in printed
    groups = {
        read_wandb_run(d)["run"]["run_group"] for d in out.glob("trial-*/wandb/offline-run-*")
    }
    assert len(groups) == 1 and groups.pop().startswith("areas_smoothing-")  # one group: the sweep


RANDOM_SWEEP = """
method: random
metric: {name: quality/iou, goal: maximize}
parameters:
  method.lr: {distribution: log_uniform_values, min: 0.002, max: 0.1}
  lambda0: {values: [100.0, 300.0, 1000.0]}
command:
  - ${env}
  - lightning-extremal
  - run
  - max_iter=5
  - ${args_no_hyphens}
"""


@pytest.mark.parametrize("method", ["random", "bayes"])
def test_random_and_bayes_sweeps_propose_new_points(tmp_path, monkeypatch, method):
    """The search loop itself, with a stand-in job whose metric is known."""
    import lightning_extremal.jobs.sweep as sweep_module
    from lightning_extremal.jobs.sweep import run_sweep

    sweep_file = "optimizer"  # the shipped bayes sweep
    if method == "random":
        sweep_file = tmp_path / "random.yaml"
        sweep_file.write_text(RANDOM_SWEEP)
    seen = []

    def fake_job(cfg):
        out = Path(cfg.output_dir)
        out.mkdir(parents=True)
        seen.append((cfg.method.lr, cfg.method.lambda0, cfg.logger.group))
        assert cfg.logger.name == "none"  # the extra override
        if method == "random":
            assert cfg.method.max_iter == 5  # a fixed argument of the sweep's command
        quality = {"iou": -abs(math.log10(cfg.method.lr) + 2), "pointing": 0.5, "pairs": 1.0}
        (out / "summary.json").write_text(json.dumps({"results": [], "quality": quality}))
        return out

    monkeypatch.setattr(sweep_module, "run_job", fake_job)
    out = run_sweep(sweep_file, count=4, overrides=["logger=none"], output_dir=tmp_path / "s")
    assert len({(lr, lam) for lr, lam, _ in seen}) == 4  # a new point every trial
    assert len({group for *_, group in seen}) == 1
    with open(out / "sweep_summary.csv", newline="") as handle:
        trials = list(csv.DictReader(handle))
    values = [float(t["quality/iou"]) for t in trials]
    assert values == sorted(values, reverse=True)
    assert all(0.002 <= float(t["method.lr"]) <= 0.1 for t in trials)


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "method: grid\nmetric: {name: quality/iou, goal: maximize}\n"
            "parameters: {lrr: {values: [1]}}",
            "parameter 'lrr' is not a config key",
        ),
        (
            "method: anneal\nmetric: {name: x}\nparameters: {lr: {values: [1]}}",
            "method must be one of",
        ),
        ("method: grid\nparameters: {lr: {values: [1]}}", "metric must be"),
        ("method: grid\nmetric: {name: x, goal: up}\nparameters: {lr: {values: [1]}}", "goal"),
    ],
)
def test_bad_sweep_files_name_the_problem(tmp_path, text, message):
    from lightning_extremal.jobs.sweep import load_sweep

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_sweep(path)


def test_sweep_cli_errors(tmp_path, capsys):
    assert main(["sweep", "optimizer", "logger=none"]) == 2
    assert "--count" in capsys.readouterr().err
    assert main(["sweep", "--count", "x", "optimizer"]) == 2
    assert main(["sweep", str(tmp_path / "nope.yaml")]) == 2
    assert "areas_smoothing.yaml" in capsys.readouterr().err


def test_shipped_sweeps_are_valid_wandb_sweep_files():
    from lightning_extremal.jobs.sweep import _import_sweeps, fixed_args, load_sweep

    sweeps = _import_sweeps()

    for name in ("areas_smoothing", "optimizer"):
        config = load_sweep(ROOT / "configs" / "sweeps" / f"{name}.yaml")
        assert "${args_no_hyphens}" in config["command"] and config["program"]
        assert config["metric"]["name"].startswith("quality/")
        proposal = sweeps.next_run(config, [])
        compose(
            [
                *fixed_args(config),
                *(f"{k}={json.dumps(v['value'])}" for k, v in proposal.config.items()),
            ]
        )
    grid = load_sweep(ROOT / "configs" / "sweeps" / "areas_smoothing.yaml")
    assert set(grid["parameters"]) >= {"areas", "method.smoothing"}
    assert set(load_sweep("optimizer")["parameters"]) == {
        "method.lr",
        "method.lambda0",
        "method.lambda_growth",
        "method.max_iter",
    }


# --- house rules ---------------------------------------------------------------------------------


def test_core_and_callbacks_do_not_import_wandb_or_matplotlib_at_module_level():
    files = [*(ROOT / "lightning_extremal").glob("*.py"), *(ROOT / "callbacks").glob("*.py")]
    for path in files:
        for node in ast.parse(path.read_text()).body:  # module level only
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] in ("wandb", "matplotlib") for n in names), path
