"""Run an unmodified W&B sweep file without a W&B server.

The W&B sweep engine (the PyPI package ``sweeps``, what the W&B server runs) proposes each
trial's parameters; each trial is one :func:`~lightning_extremal.jobs.run.job.run_job` with the
parameters as ``key=value`` overrides; all trials log into one W&B group (the sweep id), and a
table of the trials sorted by the sweep's metric is printed and written to
``sweep_summary.csv``. Online, the same file works with ``wandb sweep`` + ``wandb agent``.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import os
import random
import time
import warnings
from pathlib import Path
from typing import Any

from ..config import (
    compose,
    configs_dir,
    did_you_mean,
    leaf_aliases,
    read_yaml_mapping,
    valid_keys,
)
from ..engine.loggers import wandb_dir
from .run.job import run_job
from .run.metrics import job_metrics
from .run.store import atomic_write_text

METHODS = ("grid", "random", "bayes")
GOALS = ("maximize", "minimize")
#: ``command`` macros that W&B replaces with the trial's parameters.
ARGS_MACROS = ("${args_no_hyphens}", "${args}", "${args_no_boolean_flags}", "${args_json}")
#: ``command`` macros that name the program; dropped when running trials in this process.
PROGRAM_MACROS = ("${env}", "${interpreter}", "${program}")


def load_sweep(path: str | Path) -> dict[str, Any]:
    """Read and check a W&B sweep file (a path, or the name of one in ``configs/sweeps``):
    ``method``, ``metric {name, goal}``, ``parameters`` whose names are config keys
    (``method.lr``, ``areas``, …)."""
    path = Path(path)
    if not path.is_file():
        shipped = configs_dir() / "sweeps" / f"{path.name}.yaml"
        if not shipped.is_file():
            available = sorted(p.name for p in (configs_dir() / "sweeps").iterdir())
            raise ValueError(f"no sweep file at {str(path)!r}; shipped sweeps: {available}")
        path = Path(str(shipped))
    config = read_yaml_mapping(path.read_text(), str(path), "a W&B sweep file")
    if config.get("method") not in METHODS:
        raise ValueError(
            f"{path}: method must be one of {list(METHODS)}; got {config.get('method')!r}"
        )
    metric = config.get("metric")
    if not isinstance(metric, dict) or not metric.get("name"):
        raise ValueError(f"{path}: metric must be a mapping with a name (and goal); got {metric!r}")
    if metric.get("goal", "minimize") not in GOALS:
        raise ValueError(
            f"{path}: metric.goal must be one of {list(GOALS)}; got {metric['goal']!r}"
        )
    parameters = config.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise ValueError(f"{path}: parameters must be a non-empty mapping of config keys")
    keys, aliases = set(valid_keys()), leaf_aliases()
    for name, spec in parameters.items():
        if aliases.get(name, name) not in keys:
            hint = did_you_mean(name, [*keys, *aliases], aliases)
            raise ValueError(
                f"{path}: parameter {name!r} is not a config key"
                f"{hint or '; `lightning-extremal run --help` lists the keys'}"
            )
        if not isinstance(spec, dict):
            raise ValueError(
                f"{path}: parameter {name!r} must be a mapping (value/values/min/max…)"
            )
    return config


def fixed_args(config: dict[str, Any]) -> list[str]:
    """The ``key=value`` arguments written into ``command`` after ``run`` (not the macros)."""
    command = config.get("command") or []
    if "run" not in command:
        return []
    tail = command[command.index("run") + 1 :]
    return [str(a) for a in tail if a not in ARGS_MACROS + PROGRAM_MACROS and "=" in str(a)]


def format_value(value: Any) -> str:
    """A parameter value as the CLI parses it (lists, booleans and null as YAML)."""
    return value if isinstance(value, str) else json.dumps(value)


def _import_sweeps():
    """The W&B sweep engine, without the pydantic-v2 deprecation noise of its models."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import sweeps
    return sweeps


def _seed_search(seed: int, trial: int) -> None:
    # The engine draws from the global RNGs, which every trial's seed_everything resets:
    # without reseeding, random search would propose the same point again and again.
    import numpy as np

    random.seed(seed * 100_003 + trial)
    np.random.seed((seed * 100_003 + trial) % 2**32)


def run_sweep(
    path: str | Path,
    count: int | None = None,
    overrides: list[str] | None = None,
    output_dir: str | Path | None = None,
    seed: int = 0,
) -> Path:
    """Run the sweep in ``path`` here: up to ``count`` trials (grid: all points by default).

    ``overrides`` (``key=value``) are applied after the sweep's parameters, so e.g.
    ``max_iter=3`` shortens every trial. Trial ``i`` writes to ``<out>/trial-<i>/``; the
    sweep writes ``<out>/sweep_summary.csv`` and returns ``<out>``.
    """
    sweeps = _import_sweeps()
    started = time.time()
    config = load_sweep(path)
    _check_count(count, config["method"])
    sweep_id = _sweep_id(config, path)
    out = Path(output_dir) if output_dir else Path("outputs") / f"sweep-{sweep_id}"
    out.mkdir(parents=True, exist_ok=True)
    metric, goal = config["metric"]["name"], config["metric"].get("goal", "minimize")
    base = fixed_args(config)
    print(
        f"lightning-extremal sweep {sweep_id}: {config['method']} over "
        f"{', '.join(config['parameters'])}; metric {metric} ({goal}); results in {out.resolve()}"
    )
    runs: list[Any] = []
    trials: list[dict[str, Any]] = []
    while count is None or len(runs) < count:
        _seed_search(seed, len(runs))
        proposal = sweeps.next_run(config, runs)
        if proposal is None:
            break  # grid exhausted
        trial = f"trial-{len(runs):03d}"
        run, row = _run_trial(sweeps, proposal, trial, base, overrides, out, sweep_id, metric)
        runs.append(run)
        trials.append(row)
    _write_results(out, sweep_id, config, trials, metric, goal, started)
    if trials and all(t["state"] == "failed" for t in trials):
        raise RuntimeError(
            f"every trial of sweep {sweep_id} failed; first error: {trials[0]['error']}"
        )
    return out


def _check_count(count: int | None, method: str) -> None:
    """Raise unless ``count`` is a positive int, or None for a grid sweep (which ends)."""
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError(f"--count must be a positive integer; got {count!r}")
    if count is None and method != "grid":
        raise ValueError(f"a {method} sweep never ends by itself: give --count N")


def _sweep_id(config: dict[str, Any], path: str | Path) -> str:
    """``<name>-<YYYYmmdd-HHMMSS>``: the sweep's name (default: the file's stem) and now."""
    name = str(config.get("name") or Path(path).stem)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{name}-{stamp}"


def _run_trial(
    sweeps: Any,
    proposal: Any,
    trial: str,
    base: list[str],
    overrides: list[str] | None,
    out: Path,
    sweep_id: str,
    metric: str,
) -> tuple[Any, dict[str, Any]]:
    """Run the job of one proposal into ``<out>/<trial>``; return the engine's ``SweepRun``
    for it and its row of the summary table."""
    params = {k: v["value"] for k, v in proposal.config.items()}
    args = [f"{k}={format_value(v)}" for k, v in params.items()]
    cfg = compose(
        [
            *trial_logger_args(sweep_id),
            *base,
            *args,
            *(overrides or []),
            f"output_dir={out / trial}",
        ]
    )
    effective = {k: effective_value(cfg, k) for k in params}
    overridden = [k for k in params if effective[k] != params[k]]
    note = f" (overridden here: {', '.join(overridden)})" if overridden else ""
    print(f"lightning-extremal sweep: {trial} {' '.join(args)}{note}", flush=True)
    value, state, error = _trial_outcome(cfg, trial, metric)
    summary_metrics = {metric: value} if value is not None else {}
    run = sweeps.SweepRun(
        name=trial,
        config=proposal.config,
        state=state,
        summary_metrics=summary_metrics,
        history=[summary_metrics],
    )
    row = {
        "trial": trial,
        **effective,  # what the trial ran with (extra overrides win over the proposal)
        metric: value,
        "state": state,
        "overridden": " ".join(f"{k}(proposed {params[k]})" for k in overridden),
        "output_dir": str(out / trial),
        "error": error,
    }
    return run, row


def trial_logger_args(sweep_id: str) -> list[str]:
    """Every trial's W&B group (the sweep id) and job type (``sweep-trial``), unless the
    shell's ``$WANDB_RUN_GROUP`` / ``$WANDB_JOB_TYPE`` name others; a key on the command line
    (``logger.group=…``) beats both."""
    args = []
    if not os.environ.get("WANDB_RUN_GROUP"):
        args.append(f"logger.group={sweep_id}")
    if not os.environ.get("WANDB_JOB_TYPE"):
        args.append("logger.job_type=sweep-trial")
    return args


def _trial_outcome(cfg: Any, trial: str, metric: str) -> tuple[float | None, str, str]:
    """Run the trial's job: (its ``metric`` or None, ``finished``/``failed``, the error)."""
    # stacklevel=4 skips this function, _run_trial and run_sweep: the warnings name the code
    # that called run_sweep.
    value, state, error = None, "finished", ""
    try:
        job = run_job(cfg)
        summary = json.loads((job / "summary.json").read_text())
        value = job_metrics(summary).get(metric)
        if value is None:
            warnings.warn(
                f"{trial}: metric {metric!r} not available ({sorted(job_metrics(summary))}); "
                "quality/* needs images with ground truth (data=demo or data.ground_truth=DIR)",
                RuntimeWarning,
                stacklevel=4,
            )
    except Exception as exc:  # a failed trial is recorded; the sweep goes on, like an agent
        state, error = "failed", repr(exc)
        warnings.warn(f"{trial} failed: {exc!r}", RuntimeWarning, stacklevel=4)
    return value, state, error


def _write_results(
    out: Path,
    sweep_id: str,
    config: dict[str, Any],
    trials: list[dict[str, Any]],
    metric: str,
    goal: str,
    started: float,
) -> None:
    """Print the trials best first and write them to sweep_summary.csv; write sweep.json;
    print how to upload the offline W&B runs made since ``started`` (if any, under each
    trial's folder or ``$WANDB_DIR``) and where the summary is."""
    table = sort_trials(trials, metric, goal)
    text = write_summary(table, out / "sweep_summary.csv")
    print(text)
    atomic_write_text(
        json.dumps({"sweep": sweep_id, "config": config}, indent=2, default=str), out / "sweep.json"
    )
    roots = {wandb_dir(Path(t["output_dir"])) / "wandb" for t in trials}
    run_dirs = sorted(
        str(p) for root in roots for p in root.glob("offline-run-*") if p.stat().st_mtime >= started
    )
    if run_dirs:
        print(
            f"W&B: {len(run_dirs)} offline runs in group {sweep_id}; upload them together with\n"
            f"  wandb sync {' '.join(run_dirs)}"
        )
    print(
        f"lightning-extremal sweep: summary in {(out / 'sweep_summary.csv').resolve()}", flush=True
    )


def effective_value(cfg: Any, key: str) -> Any:
    """The value of a CLI key (``method.lr`` or a bare alias like ``areas``) in a RunConfig."""
    value = cfg
    for part in leaf_aliases().get(key, key).split("."):
        value = getattr(value, part)
    return value


def sort_trials(trials: list[dict[str, Any]], metric: str, goal: str) -> list[dict[str, Any]]:
    """Best first by ``metric`` (``goal`` maximize/minimize); trials without a value last."""
    sign = -1.0 if goal == "maximize" else 1.0

    def key(trial: dict[str, Any]) -> tuple[int, float]:
        value = trial.get(metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return (1, 0.0)
        return (0, sign * float(value))

    return sorted(trials, key=key)


def write_summary(trials: list[dict[str, Any]], path: Path) -> str:
    """Write the trials as CSV; return them as a fixed-width text table."""
    columns: list[str] = []
    for trial in trials:
        columns += [c for c in trial if c not in columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(trials)
    shown = [c for c in columns if c not in ("output_dir", "error", "overridden")]
    cells = [[_cell(t.get(c)) for c in shown] for t in trials]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(shown)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
