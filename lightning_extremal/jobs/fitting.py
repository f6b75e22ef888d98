"""One chunk's optimisation with its logger and observing callbacks, and the fallbacks that
keep a logging failure from losing its masks."""

from __future__ import annotations

import warnings
from dataclasses import asdict
from pathlib import Path

import torch

from ..api import extremal_perturbation, method_options
from ..callbacks import ConvergenceMonitor, FinalOverlays, MaskEvolution
from ..config import RunConfig
from ..errors import UnexplainableModelError, UsageError
from ..naming import pair_names
from .chunks import Job
from .loggers import finish_logger, make_logger


def make_callbacks(cfg: RunConfig, out: Path, names: list[str], classes) -> list:
    """The observing callbacks of one chunk (see ``logger.*`` in the config)."""
    log = cfg.logger
    callbacks: list = [ConvergenceMonitor(log.early_stop_tol, log.early_stop_window)]
    if log.mask_every_n_steps:
        callbacks.append(MaskEvolution(log.mask_every_n_steps, out / "mask_evolution", names))
    if log.final_table:
        callbacks.append(FinalOverlays(out / "final_overlays", names, classes))
    return callbacks


class ChunkFit:
    """One chunk's optimisation with its logger and callbacks, and the fallbacks that keep
    a logging failure from losing its masks."""

    def __init__(self, cfg: RunConfig, out: Path, name: str, group: str, names, classes) -> None:
        self.cfg, self.out, self.name, self.names, self.classes = cfg, out, name, names, classes
        self.steps = cfg.method.max_iter
        try:
            self.logger = make_logger(cfg.logger, out, name, group, asdict(cfg))
        except Exception as error:
            warnings.warn(
                f"could not create the {cfg.logger.name} logger ({error!r}); "
                f"{name} runs without one",
                RuntimeWarning,
                stacklevel=3,
            )
            self.logger = False

    def explain(self, model, batch, targets, ids: list[str]):
        """The chunk's masks for ``batch`` (images ``ids``); a model that cannot be explained
        raises a :class:`UsageError` naming the images."""
        try:
            return self._explain(model, batch, targets)
        except UnexplainableModelError as error:
            names = ", ".join(ids[i] for i in error.images)
            raise UsageError(f"{names}: {error}") from error

    def _explain(self, model, batch, targets):
        callbacks = make_callbacks(self.cfg, self.out, self.names, self.classes)
        try:
            result = _explain(self.cfg, model, batch, targets, self.logger, callbacks)
        except Exception as error:
            if self.logger is False or isinstance(error, UsageError):
                raise
            # Loggers are fail-soft, so this is rare (a failure outside the wrapped calls),
            # or not about logging at all: then the rerun raises it again.
            warnings.warn(
                f"{self.name} failed with its logger attached ({error!r}); closing the logger "
                "and running the chunk again without one",
                RuntimeWarning,
                stacklevel=2,
            )
            _finish(self.logger)
            self.logger = False
            callbacks = make_callbacks(self.cfg, self.out, self.names, self.classes)
            result = _explain(self.cfg, model, batch, targets, False, callbacks)
        monitor = callbacks[0]
        self.steps = monitor.steps or self.cfg.method.max_iter
        return result

    def log_quality(self, quality: dict[str, float] | None, converged: torch.Tensor) -> None:
        """``quality/iou``, ``quality/pointing`` and ``convergence/converged_fraction``,
        ``convergence/not_converged`` (masks) to the logger, so they end in the W&B run's
        summary (fail-soft, like every log)."""
        if self.logger is False:
            return
        metrics = {f"quality/{k}": v for k, v in (quality or {}).items() if k != "pairs"}
        metrics["convergence/converged_fraction"] = converged.float().mean().item()
        metrics["convergence/not_converged"] = float((~converged).sum())
        try:  # a FailSoftLogger never raises; a logger given unwrapped might
            self.logger.log_metrics(metrics, step=self.steps)
            self.logger.save()
        except Exception as error:
            warnings.warn(
                f"could not log {sorted(metrics)}: {error!r}", RuntimeWarning, stacklevel=2
            )

    def finish(self) -> str | None:
        return _finish(self.logger)

    @classmethod
    def for_chunk(cls, job: Job, number: int, ids: list[str], targets: list[list[int]]):
        """The fit of chunk ``number`` of ``job``: images ``ids``, each explained for its
        ``targets``; its W&B run is called ``<job>-chunk<number>``, in the job's group."""
        pair_ids = [i for i, ts in zip(ids, targets, strict=True) for _ in ts]
        names = pair_names(pair_ids, [t for ts in targets for t in ts])
        name = f"{job.name}-chunk{number}"
        return cls(job.cfg, job.out, name, job.group, names, job.loaded.classes)


def _explain(cfg: RunConfig, model, batch, targets, logger, callbacks=()):
    t = cfg.trainer
    return extremal_perturbation(
        model,
        batch,
        targets,
        cfg.method.areas,
        **method_options(cfg.method),
        seed=t.seed,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        precision=t.precision,
        progress=t.progress,
        compile=t.compile,
        channels_last=t.channels_last,
        log_every_n_steps=t.log_every_n_steps,
        memory_check=t.memory_check,
        logger=logger,
        callbacks=list(callbacks),
    )


def _finish(logger) -> str | None:
    try:
        return finish_logger(logger)
    except Exception as error:  # a logging failure must not lose finished masks
        warnings.warn(f"could not close the logger: {error}", stacklevel=2)
        return None
