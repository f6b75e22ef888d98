"""One fresh Lightning Trainer per optimisation, built from the run's ``TrainerConfig``."""

from __future__ import annotations

import contextlib
import datetime
import logging
import warnings
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from ..callbacks import StepProgressBar
from ..config import TrainerConfig
from .distributed import DDP_STRATEGIES, launched_externally
from .loggers import resolve_logger
from .stopping import StopAtSignal


@contextlib.contextmanager
def quiet_lightning() -> Any:
    """Silence Lightning's per-fit banners (GPU available…, dataloader workers…)."""
    names = ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        # The classifier is in eval mode on purpose (frozen batch-norm statistics).
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        # Still the way to keep rank-local buffers (the pyramids) out of DDP's syncing.
        warnings.filterwarnings("ignore", message=".*`broadcast_buffers` is deprecated.*")
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


def make_trainer(
    trainer: TrainerConfig,
    max_iter: int,
    callbacks: list[Callback],
    logger: Any = False,
    default_root_dir: str | None = None,
) -> L.Trainer:
    """A fresh Trainer for one optimisation of ``max_iter`` steps (a finished Trainer ignores
    a second ``fit``), from a validated ``trainer`` config; ``logger`` a Lightning logger or a
    name of :func:`~.loggers.resolve_logger`, writing under ``default_root_dir``."""
    callbacks = [*callbacks, StopAtSignal()]  # SIGINT/SIGTERM in a job: stop after this step
    strategy = trainer.strategy
    if strategy == "auto" and launched_externally():
        strategy = "ddp"  # torchrun / srun started one process per rank
    if strategy in DDP_STRATEGIES:
        from lightning.pytorch.strategies import DDPStrategy

        # Buffers (the pyramid) belong to each rank's images: never broadcast them. A rank
        # that died must not leave the others waiting Lightning's 30 minutes in a collective.
        start = {"ddp": "popen", "ddp_spawn": "spawn", "ddp_fork": "fork", "ddp_notebook": "fork"}
        strategy = DDPStrategy(
            start_method=start[strategy],
            broadcast_buffers=False,
            timeout=datetime.timedelta(seconds=trainer.collective_timeout),
        )
    if trainer.progress:
        callbacks.append(StepProgressBar())
    return L.Trainer(
        max_epochs=max_iter,
        accelerator=trainer.accelerator,
        devices=trainer.devices,
        num_nodes=trainer.num_nodes,
        strategy=strategy,
        precision=trainer.precision,
        logger=resolve_logger(logger, default_root_dir),
        callbacks=callbacks,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        enable_progress_bar=bool(trainer.progress),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=trainer.log_every_n_steps,
        default_root_dir=default_root_dir,
        deterministic=trainer.deterministic,
    )
