"""Experiment loggers from config: W&B (offline unless logged in), CSV, TensorBoard, none."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

from .config import LOGGERS, LoggerConfig

WANDB_HOST = "api.wandb.ai"


def wandb_logged_in() -> bool:
    """True when a W&B API key is configured (environment or ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(WANDB_HOST) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_offline(cfg: LoggerConfig) -> bool:
    """Offline when asked, when ``WANDB_MODE`` says so, or when there is no login."""
    if cfg.offline is not None:
        return bool(cfg.offline)
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "dryrun", "disabled"):
        return True
    return not wandb_logged_in()


def make_logger(
    cfg: LoggerConfig, save_dir: Path, name: str, group: str, config: dict[str, Any]
) -> Any:
    """A Lightning logger for one fit (``False`` for ``none``)."""
    if cfg.name not in LOGGERS:
        raise ValueError(f"logger must be one of {list(LOGGERS)}; got {cfg.name!r}")
    if cfg.name == "none":
        return False
    if cfg.name == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(save_dir, name="csv", version=name)
    if cfg.name == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        return TensorBoardLogger(save_dir, name="tensorboard", version=name)
    from lightning.pytorch.loggers import WandbLogger

    save_dir.mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        project=cfg.project,
        name=name,
        group=group,
        save_dir=str(save_dir),
        offline=wandb_offline(cfg),
        config=config,
        reinit="finish_previous",
    )


def finish_logger(logger: Any) -> str | None:
    """End a W&B run (so the next fit starts a new one); return its directory if offline."""
    if logger is False or logger is None:
        return None
    from lightning.pytorch.loggers import WandbLogger

    if not isinstance(logger, WandbLogger):
        return None
    import wandb

    run = logger.experiment
    run_dir = str(Path(run.dir).parent) if getattr(run, "dir", None) else None
    offline = bool(getattr(run.settings, "_offline", False)) or run.settings.mode == "offline"
    wandb.finish()
    return run_dir if offline else None
