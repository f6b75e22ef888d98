"""One fresh Lightning Trainer per optimisation, and the run options it is built from."""

from __future__ import annotations

import contextlib
import datetime
import logging
import warnings
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from ..callbacks import StepProgressBar
from ..config import PRECISIONS
from .distributed import DDP_STRATEGIES, launched_externally
from .loggers import check_logger, resolve_logger
from .stopping import StopAtSignal

#: Options that configure the run rather than the method (with their defaults).
RUN_OPTIONS: dict[str, Any] = {
    "seed": 0,
    "accelerator": "auto",
    "devices": 1,
    "num_nodes": 1,
    "strategy": "auto",
    "collective_timeout": 600,
    "sharded": False,
    "precision": "32-true",
    "logger": False,
    "callbacks": None,
    "progress": True,
    "compile": "auto",
    "channels_last": "auto",
    "log_every_n_steps": 10,
    "batch_size": None,
    "ckpt_path": None,
    "default_root_dir": None,
    "memory_check": True,
}


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


def make_trainer(max_iter: int, run: dict[str, Any], callbacks: list[Callback]) -> L.Trainer:
    """A fresh Trainer for one optimisation (a finished Trainer ignores a second ``fit``)."""
    if str(run["precision"]) not in PRECISIONS:
        # "bf16-true"/"16-true" would convert the caller's model weights in place.
        raise ValueError(f"precision must be one of {list(PRECISIONS)}; got {run['precision']!r}")
    check_logger(run["logger"])
    callbacks = [*callbacks, StopAtSignal()]  # SIGINT/SIGTERM in a job: stop after this step
    strategy = run["strategy"]
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
            timeout=datetime.timedelta(seconds=run["collective_timeout"]),
        )
    if run["progress"]:
        callbacks.append(StepProgressBar())
    return L.Trainer(
        max_epochs=max_iter,
        accelerator=run["accelerator"],
        devices=run["devices"],
        num_nodes=run["num_nodes"],
        strategy=strategy,
        precision=run["precision"],
        logger=resolve_logger(run["logger"], run["default_root_dir"]),
        callbacks=callbacks,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        enable_progress_bar=bool(run["progress"]),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=run["log_every_n_steps"],
        default_root_dir=run["default_root_dir"],
    )
