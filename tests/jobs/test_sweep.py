"""Offline W&B sweeps (jobs/sweep): grid, random and bayes search, bad sweep files, the shipped
sweeps."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from lightning_extremal.cli import main
from lightning_extremal.config import compose
from lightning_extremal.jobs.run.metrics import job_metrics
from tests.helpers import AREAS, read_wandb_run
from tests.helpers import run_args as _args

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_grid_sweep_runs_offline_and_summarises_trials(shapes, tmp_path, offline_wandb, capsys):
    out = tmp_path / "sweep"
    quick = (
        "max_iter=3",
        "logger=wandb",
        "data.targets=top1",
        "logger.mask_every_n_steps=0",
        "logger.final_table=false",
    )
    code = main(
        [
            "sweep",
            str(ROOT / "configs" / "sweeps" / "areas_smoothing.yaml"),
            "--count",
            "2",
            *_args(shapes, out, *quick),
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
    runs = {d.parents[1].name: read_wandb_run(d) for d in out.glob("trial-*/wandb/offline-run-*")}
    groups = {run["run"]["run_group"] for run in runs.values()}
    assert len(groups) == 1 and groups.pop().startswith("areas_smoothing-")  # one group: the sweep
    for trial, run in runs.items():  # each trial's run: its job type, the sweep's metrics
        assert run["run"]["job_type"] == "sweep-trial"
        metrics = job_metrics(json.loads((out / trial / "summary.json").read_text()))
        assert {"quality/iou", "reward", "area_error", "convergence/converged_fraction"} <= set(
            metrics
        )
        assert {k: run["summary"][k] for k in metrics} == pytest.approx(metrics)

    # A second sweep's trials have the same folder names, never the same run names.
    main(["sweep", "areas_smoothing", "--count", "1", *_args(shapes, tmp_path / "again", *quick)])
    again = [read_wandb_run(d)["run"] for d in (tmp_path / "again").glob("trial-*/wandb/off*")]
    names = [run["run"]["display_name"] for run in runs.values()] + [
        r["display_name"] for r in again
    ]
    assert len(again) == 1 and len(set(names)) == len(names) == 3
    same_folder = [runs["trial-000"]["run"]["display_name"], again[0]["display_name"]]
    assert all(name.startswith("trial-000-") for name in same_folder)  # one run a trial


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
            r"parameter 'lrr' is not a config key; did you mean 'method.lr'\?$",
        ),
        (
            "method: grid\nmetric: {name: x}\nparameters:\n  lr: {values: [1]\n",
            r"bad\.yaml, line 5, column 1: not valid YAML: .*\(while parsing a flow mapping\)$",
        ),
        ("- method: grid\n", r"bad\.yaml: a W&B sweep file must be a YAML mapping .* a list$"),
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
        "method.lambda_final",
        "method.max_iter",
        "method.warm_start",
    }
