"""Where the observing callbacks send what they make: the attached W&B run, else files.

Shared by :mod:`.mask_evolution`, :mod:`.convergence` and :mod:`.final_overlays`. Logging is
fail-soft: the first failure of a sink warns once and turns that sink off; the optimisation
never sees it. wandb is imported only when a W&B logger is attached.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from lightning_extremal.naming import safe_name

#: Key of the optimisation step within one fit (Lightning's WandbLogger's step metric).
WANDB_STEP_KEY = "trainer/global_step"
#: Key of the job step: W&B's ``_step`` across the fits (chunks) of one run, the charts' x-axis
#: (:class:`~lightning_extremal.engine.loggers.StepWandbLogger`).
JOB_STEP_KEY = "job/step"


def wandb_logger(trainer: Any) -> Any | None:
    """The trainer's first W&B logger that has not failed (a
    :class:`~lightning_extremal.jobs.run.fail_soft.FailSoftLogger` as it is, not unwrapped), or None."""
    from lightning.pytorch.loggers import WandbLogger  # does not import wandb itself

    for logger in getattr(trainer, "loggers", []):
        if getattr(logger, "failed", None) is not None:
            continue  # a fail-soft logger that already failed stays off
        if isinstance(getattr(logger, "wrapped", logger), WandbLogger):
            return logger
    return None


def wandb_run(trainer: Any) -> Any | None:
    """The live ``wandb`` run of the trainer's first W&B logger (looking inside
    :class:`~lightning_extremal.jobs.run.fail_soft.FailSoftLogger`), or None."""
    logger = wandb_logger(trainer)
    experiment = logger.experiment if logger is not None else None
    if experiment is not None and hasattr(experiment, "log"):
        return experiment
    return None


def log_at_step(trainer: Any, run: Any, row: dict[str, Any], step: int) -> None:
    """``run.log(row)`` at optimisation step ``step``. With a logger that places fits in one
    run (``log_row``, as :class:`~lightning_extremal.engine.loggers.StepWandbLogger`) the row
    goes at the job step of ``step`` (W&B's ``_step``, what media panels' slider reads), with
    the step labels of the scalars; otherwise (Lightning's own WandbLogger counts its calls in
    ``_step``: an explicit step behind that count would be dropped) it takes the next
    ``_step``, with ``trainer/global_step``."""
    logger = wandb_logger(trainer)
    inner = getattr(logger, "wrapped", logger)
    if callable(getattr(inner, "log_row", None)):
        inner.log_row(row, step)
    else:
        run.log({**row, WANDB_STEP_KEY: step})


@contextmanager
def staged_in_run(run: Any) -> Iterator[None]:
    """Around logging a ``wandb.Table`` to an offline ``run``: wandb stages the table's files
    (its JSON, the image cells' PNGs) in ``<run folder>/staging`` rather than in the user's
    data folder (``$WANDB_DATA_DIR``, shared by every run), so the run folder holds what
    ``wandb sync`` uploads for it. An online run is left to wandb (it uploads at once).
    ``$WANDB_DATA_DIR`` is read by wandb when it stages a file: it is set for this block only."""
    folder = getattr(run, "dir", None)
    if not getattr(run, "offline", False) or not folder:
        yield
        return
    previous = os.environ.get("WANDB_DATA_DIR")
    os.environ["WANDB_DATA_DIR"] = str(Path(folder).parent / "staging")
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("WANDB_DATA_DIR", None)
        else:
            os.environ["WANDB_DATA_DIR"] = previous


def display_names(names: Sequence[str] | None, num_pairs: int) -> list[str]:
    """Names of the P (image, target) pairs: the given ones, else ``pair0``, ``pair1``, …"""
    if names is not None and len(names) == num_pairs:
        return [safe_name(n) for n in names]
    if names is not None:
        warnings.warn(
            f"got {len(names)} names for {num_pairs} (image, target) pairs; using pair0, pair1, …",
            RuntimeWarning,
            stacklevel=3,
        )
    return [f"pair{p}" for p in range(num_pairs)]


def resolve_out_dir(out_dir: str | Path | None, trainer: Any, subdir: str) -> Path:
    """``out_dir``, else ``<trainer.log_dir or default_root_dir>/<subdir>`` (all ranks call it)."""
    if out_dir is not None:
        return Path(out_dir)
    try:
        root = trainer.log_dir  # a collective under DDP: every rank gets here
    except Exception:  # a broken logger must not stop the callbacks writing files
        root = None
    return Path(root or trainer.default_root_dir) / subdir


class FailSoft:
    """Runs logging calls; the first exception warns (naming the callback) and disables it."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.disabled = False

    def __call__(self, what: str, call: Callable[[], Any]) -> Any:
        if self.disabled:
            return None
        try:
            return call()
        except Exception as error:
            self.disabled = True
            warnings.warn(
                f"{self.owner}: {what} failed ({error!r}); it is off for the rest of this run, "
                "the optimisation goes on",
                RuntimeWarning,
                stacklevel=2,
            )
            return None


def has_image_masks(pl_module: Any) -> bool:
    """Whether the module's masks lie over the input image (``mask_kind`` "input", the
    default); channel and layer-grid masks (:mod:`lightning_extremal.modules.layer_masks`)
    are not drawn."""
    return getattr(pl_module, "mask_kind", "input") == "input"


def held_masks(pl_module: Any) -> slice:
    """The masks whose images this process holds: all of them, but under block sharding (a
    multi-process job) the own block's, which are the ones this rank can draw."""
    return pl_module.held() if hasattr(pl_module, "held") else slice(None)


def held_pairs(pl_module: Any) -> int:
    """How many (image, target) pairs :func:`held_masks` covers."""
    part = held_masks(pl_module)
    return len(range(*part.indices(pl_module.mask_params.shape[0]))) // pl_module.num_areas


def original_images(pl_module: Any) -> torch.Tensor:
    """The unperturbed image behind each held mask, B×C×H×W (the pyramid's last level is the
    image)."""
    return pl_module.pyramid[pl_module.local_images(held_masks(pl_module)), -1]


def to_hwc(image: torch.Tensor) -> Any:
    """C×H×W uint8 tensor → H×W×C numpy array (what PIL and ``wandb.Image`` take)."""
    return image.permute(1, 2, 0).contiguous().numpy()


def save_png(image: torch.Tensor, path: Path) -> None:
    """Write a C×H×W (or H×W) uint8 tensor as a PNG."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    array = image.numpy() if image.dim() == 2 else to_hwc(image)
    Image.fromarray(array).save(path)
