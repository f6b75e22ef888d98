"""Experiment loggers from config: W&B (offline unless logged in), CSV, TensorBoard, none.

Every logger the job makes is wrapped in :class:`FailSoftLogger`, so a logging failure (W&B
directory not writable, a logger that raises mid-run) is a warning, never a lost optimisation.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger

from ...config import LoggerConfig
from ...engine.loggers import DEFAULT_PROJECT, from_env, named_logger, wandb_dir, wandb_tags


class FailSoftLogger(Logger):
    """Wraps a Lightning logger so that its failures warn instead of ending the run.

    The first exception from any logging call (``log_metrics``, ``log_hyperparams``, ``save``,
    creating the W&B run, …) is reported as a warning naming the logger, and the wrapper stops
    calling it for the rest of the run: the optimisation and its results on disk are not
    affected. ``wrapped`` is the original logger (callbacks look there for W&B).
    """

    def __init__(self, logger: Logger) -> None:
        super().__init__()
        self.wrapped = logger
        self.failed: BaseException | None = None

    def _guard(self, what: str, call: Callable[[], Any], default: Any = None) -> Any:
        if self.failed is not None:
            return default
        try:
            return call()
        except Exception as error:
            self.failed = error
            warnings.warn(
                f"logging with {type(self.wrapped).__name__} failed in {what} ({error!r}); "
                "logging is off for the rest of this run, the optimisation goes on",
                RuntimeWarning,
                stacklevel=2,
            )
            return default

    @property
    def name(self) -> str | None:
        return self._guard("name", lambda: self.wrapped.name)

    @property
    def version(self) -> int | str | None:
        return self._guard("version", lambda: self.wrapped.version)

    @property
    def save_dir(self) -> str | None:
        return self._guard("save_dir", lambda: self.wrapped.save_dir)

    @property
    def log_dir(self) -> str | None:
        return self._guard("log_dir", lambda: self.wrapped.log_dir)

    @property
    def experiment(self) -> Any:
        if not hasattr(type(self.wrapped), "experiment"):
            # Lightning asks ``hasattr(logger, "experiment")``: say no, as the logger would.
            raise AttributeError(f"{type(self.wrapped).__name__} has no experiment")
        return self._guard("experiment", lambda: self.wrapped.experiment)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self._guard("log_metrics", lambda: self.wrapped.log_metrics(metrics, step))

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        self._guard(
            "log_hyperparams", lambda: self.wrapped.log_hyperparams(params, *args, **kwargs)
        )

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        self._guard("log_graph", lambda: self.wrapped.log_graph(model, input_array))

    def save(self) -> None:
        self._guard("save", self.wrapped.save)

    def finalize(self, status: str) -> None:
        self._guard("finalize", lambda: self.wrapped.finalize(status))

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        self._guard(
            "after_save_checkpoint", lambda: self.wrapped.after_save_checkpoint(checkpoint_callback)
        )


def unwrap_logger(logger: Any) -> Any:
    """The logger inside a :class:`FailSoftLogger` (or the logger itself)."""
    return getattr(logger, "wrapped", logger)


def make_logger(
    cfg: LoggerConfig,
    save_dir: Path,
    name: str,
    group: str,
    config: dict[str, Any],
    tags: tuple[str, ...] = (),
) -> Any:
    """A fail-soft Lightning logger (``False`` for ``none``): a job's one logger, shared by
    its chunks' fits (:func:`~.fitting.job_logger`); a W&B run of job type ``run`` unless
    ``logger.job_type`` or ``$WANDB_JOB_TYPE`` says otherwise."""
    logger = named_logger(cfg, save_dir, name, group, config, "run", tags)
    return FailSoftLogger(logger) if logger is not False else False


def finish_logger(logger: Any) -> str | None:
    """End a W&B run (so the next job starts a new one); return its directory if offline.

    A W&B run is always finished, also when its logger failed mid-run (``wandb.finish`` on
    no active run is a no-op).
    """
    if logger is False or logger is None:
        return None
    from lightning.pytorch.loggers import WandbLogger

    inner = unwrap_logger(logger)
    if not isinstance(inner, WandbLogger):
        return None
    import wandb

    try:
        # ``_experiment``: never start a run just to finish it (a logger that never logged).
        run = inner._experiment
        if run is None:
            return None
        run_dir = str(Path(run.dir).parent) if getattr(run, "dir", None) else None
        offline = bool(getattr(run.settings, "_offline", False)) or run.settings.mode == "offline"
    finally:
        wandb.finish()
    return run_dir if offline else None


def log_table_run(
    name: str,
    job_type: str,
    out: Path,
    config: dict[str, Any],
    key: str,
    rows: list[dict[str, Any]],
    summary: dict[str, float],
    tags: tuple[str, ...] = (),
    more_tables: dict[str, list[dict[str, Any]]] | None = None,
) -> str | None:
    """One W&B run holding a finished table (``rows`` under ``key``; ``more_tables``: other
    keys and their rows) and ``summary`` metrics;
    its directory, printed. The W&B variables of the shell apply (``$WANDB_MODE``, default
    offline; ``$WANDB_PROJECT``, ``$WANDB_ENTITY``, ``$WANDB_DIR`` (default ``out``),
    ``$WANDB_JOB_TYPE``, ``$WANDB_RUN_GROUP``, ``$WANDB_TAGS`` added to ``tags``). Fail-soft:
    a logging error is a warning, never a lost table (the caller has written it to disk)."""
    try:
        import wandb

        run = wandb.init(
            project=from_env(None, "WANDB_PROJECT", DEFAULT_PROJECT),
            job_type=from_env(None, "WANDB_JOB_TYPE", job_type),
            name=from_env(None, "WANDB_NAME", name),
            tags=wandb_tags(*tags),
            dir=str(wandb_dir(out)),
            mode=os.environ.get("WANDB_MODE", "offline"),
            config=config,
        )
        tables = {key: rows, **(more_tables or {})}
        run.log({name: _table(wandb, table) for name, table in tables.items() if table})
        for metric, value in summary.items():
            run.summary[metric] = value
        run_dir = str(Path(run.dir).parent)
        run.finish()
    except Exception as error:  # logging must not lose the table
        warnings.warn(f"could not log to W&B: {error!r}", RuntimeWarning, stacklevel=2)
        return None
    print(f"W&B offline run: {run_dir}", flush=True)
    return run_dir


def _table(wandb, rows: list[dict[str, Any]]):
    columns = list(rows[0])
    return wandb.Table(columns=columns, data=[[r[c] for c in columns] for r in rows])
