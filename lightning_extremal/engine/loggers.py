"""Lightning loggers by name: ``wandb`` (offline unless logged in), ``csv``, ``tensorboard``,
``none`` — what a run's ``logger.name`` and the Python API's ``logger="csv"`` build."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

from ..config import LOGGERS, LoggerConfig

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
) -> Any:
    """The Lightning logger ``cfg.name`` writing under ``save_dir`` (``False`` for ``none``);
    ``version`` names the run (None: the logger's own numbering), ``group`` and ``config`` go
    to W&B."""
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
    from lightning.pytorch.loggers import WandbLogger

    save_dir.mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        project=cfg.project,
        name=version,
        group=group,
        save_dir=str(save_dir),
        offline=wandb_offline(cfg),
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
