"""Lightning loggers by name: ``wandb`` (offline unless logged in), ``csv``, ``tensorboard``,
``none`` — what a run's ``logger.name`` and the Python API's ``logger="csv"`` build."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger  # does not import wandb itself
from lightning.pytorch.utilities import rank_zero_only

from ..callbacks.sinks import JOB_STEP_KEY, WANDB_STEP_KEY
from ..config import LOGGERS, LoggerConfig

WANDB_HOST = "api.wandb.ai"
#: The W&B project when neither ``logger.project`` nor ``$WANDB_PROJECT`` names one.
DEFAULT_PROJECT = "lightning-extremal"


class StepWandbLogger(WandbLogger):
    """Lightning's W&B logger for one W&B run that may span several fits (a job's chunks).

    W&B's own step (``_step``, what media panels' slider reads) is the *job step*: the
    optimisation step plus the fit's offset, so the fits of a job follow each other in one
    run (chunk 0's steps 0‥T₀, then chunk 1's at T₀+1‥, …) and W&B, which drops a row logged
    behind its current step, keeps every one. Each row also carries ``job/step`` (the same
    number, the charts' x-axis: :data:`JOB_STEP_KEY`, declared with ``define_metric`` in
    place of Lightning's ``trainer/global_step``, which restarts with every fit),
    ``trainer/global_step`` (the optimisation step within the fit: chunks overlay on it) and,
    within a job, ``chunk``. Without ``anonymous`` (which wandb warns about on every run); the
    mode (online, offline, disabled) goes to ``wandb.init`` as ``mode`` (Lightning's
    ``offline=True`` would set ``$WANDB_MODE`` for the whole process)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._wandb_init.pop("anonymous", None)
        self.step_offset = 0  # the job step of the current fit's optimisation step 0
        self.last_step = -1  # the highest job step logged so far
        self.chunk: int | None = None  # the job's chunk being fitted (a row's ``chunk``)

    @property
    def experiment(self) -> Any:
        fresh = self._experiment is None
        run = super().experiment
        if fresh and callable(getattr(run, "define_metric", None)):
            # Every key against the job step (replaces Lightning's per-fit global step).
            run.define_metric(JOB_STEP_KEY)
            run.define_metric("*", step_metric=JOB_STEP_KEY, step_sync=True)
        return run

    def start_fit(self, chunk: int | None = None) -> None:
        """The next fit's optimisation step 0 is the job step after the last one logged."""
        self.step_offset = self.last_step + 1
        self.chunk = chunk

    def job_step(self, step: int) -> int:
        """The job step (W&B's ``_step``) of optimisation step ``step`` of the current fit."""
        return self.step_offset + int(step)

    @rank_zero_only
    def log_row(self, row: dict[str, Any], step: int) -> None:
        """``row`` at optimisation step ``step`` of the current fit: one W&B history row per
        job step (several calls at one step, e.g. metrics, frames and the final table, merge)."""
        at = self.job_step(step)
        self.last_step = max(self.last_step, at)
        labels = {WANDB_STEP_KEY: int(step), JOB_STEP_KEY: at}
        if self.chunk is not None:
            labels["chunk"] = self.chunk
        self.experiment.log({**row, **labels}, step=at)

    @rank_zero_only
    def log_metrics(self, metrics: Any, step: int | None = None) -> None:
        if step is None:
            super().log_metrics(metrics, step)
            return
        self.log_row(dict(metrics), step)


def wandb_logged_in() -> bool:
    """True when a W&B API key is configured (environment or ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(WANDB_HOST) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def from_env(explicit: Any, variable: str, default: Any = None) -> Any:
    """A W&B setting: the config key when given (``explicit`` not None), else the environment
    variable ``variable`` of the user's shell when set, else ``default``."""
    if explicit is not None:
        return explicit
    return os.environ.get(variable) or default


def wandb_mode(cfg: LoggerConfig) -> str:
    """``online``, ``offline`` or ``disabled``: ``logger.offline`` when given, else
    ``$WANDB_MODE`` (``dryrun`` is offline), else offline unless logged in."""
    if cfg.offline is not None:
        return "offline" if cfg.offline else "online"
    env = os.environ.get("WANDB_MODE", "").lower()
    if env in ("offline", "dryrun"):
        return "offline"
    if env in ("online", "disabled"):
        return env
    return "online" if wandb_logged_in() else "offline"


def wandb_dir(default: Path) -> Path:
    """Where W&B writes its ``wandb/`` folder: ``$WANDB_DIR`` when set, else ``default``."""
    return Path(os.environ.get("WANDB_DIR") or default)


def wandb_tags(*tags: Any) -> list[str]:
    """Run tags: ``tags`` (None and empty ones dropped) then ``$WANDB_TAGS`` (comma-separated),
    each once, cut to W&B's 64 characters."""
    env = os.environ.get("WANDB_TAGS", "").split(",")
    found = [str(t).strip()[:64] for t in [*tags, *env] if t is not None and str(t).strip()]
    return list(dict.fromkeys(found))


def check_logger(logger: Any) -> None:
    """A logger option given as a string must name one of :data:`LOGGERS`."""
    if isinstance(logger, str) and logger not in LOGGERS:
        raise ValueError(
            f"logger must be a Lightning logger, True, False, None or one of {list(LOGGERS)}; "
            f"got {logger!r}"
        )


def named_logger(
    cfg: LoggerConfig,
    save_dir: Path,
    version: str | None = None,
    group: str | None = None,
    config: dict[str, Any] | None = None,
    job_type: str = "run",
    tags: tuple[str, ...] = (),
) -> Any:
    """The Lightning logger ``cfg.name`` writing under ``save_dir`` (``False`` for ``none``);
    ``version`` names the run (None: the logger's own numbering). For W&B, ``group``,
    ``job_type`` and ``tags`` are defaults that ``$WANDB_RUN_GROUP``, ``$WANDB_JOB_TYPE``
    and ``$WANDB_TAGS`` (added) override, and the config keys override both (see
    :class:`~..config.LoggerConfig`); ``$WANDB_DIR`` replaces ``save_dir``."""
    if cfg.name not in LOGGERS:
        raise ValueError(f"logger must be one of {list(LOGGERS)}; got {cfg.name!r}")
    if cfg.name == "none":
        return False
    if cfg.name == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(save_dir, name="csv", version=version)
    if cfg.name == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        return TensorBoardLogger(save_dir, name="tensorboard", version=version)
    save_dir = wandb_dir(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    return StepWandbLogger(
        project=from_env(cfg.project, "WANDB_PROJECT", DEFAULT_PROJECT),
        entity=from_env(cfg.entity, "WANDB_ENTITY"),
        name=from_env(None, "WANDB_NAME", version),
        group=from_env(cfg.group, "WANDB_RUN_GROUP", group),
        job_type=from_env(cfg.job_type, "WANDB_JOB_TYPE", job_type),
        tags=wandb_tags(*tags, *(cfg.tags or ())),
        save_dir=str(save_dir),
        mode=wandb_mode(cfg),
        config=config,
        reinit="finish_previous",
    )


def resolve_logger(logger: Any, save_dir: str | Path | None) -> Any:
    """A ``logger`` run option as Lightning takes it: a name becomes that logger, writing under
    ``save_dir`` (None: the working directory); anything else is returned as given."""
    if not isinstance(logger, str):
        return logger
    check_logger(logger)
    return named_logger(LoggerConfig(name=logger), Path(save_dir or os.getcwd()))
