"""One chunk's optimisation with its logger and observing callbacks, and the fallbacks that
keep a logging failure from losing its masks."""

from __future__ import annotations

import warnings
from dataclasses import asdict
from pathlib import Path

from ...api import Fit, explain, mask_method
from ...callbacks import ConvergenceMonitor, FinalOverlays, MaskEvolution
from ...config import RunConfig
from ...errors import UnexplainableModelError, UsageError
from ...naming import pair_names
from .chunks import Job
from .fail_soft import finish_logger, make_logger
from .metrics import run_metrics


def make_callbacks(cfg: RunConfig, out: Path, names: list[str], classes, truths=None) -> list:
    """The observing callbacks of one chunk (see ``logger.*`` in the config); ``truths``:
    each pair's object mask (or None) for the final table's IoU and pointing columns."""
    log = cfg.logger
    callbacks: list = [ConvergenceMonitor(log.early_stop_tol, log.early_stop_window)]
    if log.mask_every_n_steps:
        callbacks.append(
            MaskEvolution(log.mask_every_n_steps, out / "mask_evolution", names, classes)
        )
    if log.final_table:
        callbacks.append(FinalOverlays(out / "final_overlays", names, classes, truths=truths))
    return callbacks


class ChunkFit:
    """One chunk's optimisation with its logger and callbacks, and the fallbacks that keep
    a logging failure from losing its masks."""

    def __init__(
        self,
        cfg: RunConfig,
        out: Path,
        name: str,
        group: str,
        names,
        classes,
        tags: tuple[str, ...] = (),
        truths=None,
        observe: bool = True,
        sharded: bool = False,
    ) -> None:
        self.cfg, self.out, self.name, self.names, self.classes = cfg, out, name, names, classes
        self.truths = truths
        self.steps = cfg.method.max_iter
        # The other ranks of a multi-process job neither log nor draw (rank 0 does), but all
        # watch convergence, so that all stop at the same step.
        self.observe, self.sharded = observe, sharded
        self.logger = False
        if not observe:
            return
        try:
            self.logger = make_logger(cfg.logger, out, name, group, asdict(cfg), tags)
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
        callbacks = self._callbacks()
        try:
            result = _explain(self.cfg, model, batch, targets, self.logger, callbacks, self.sharded)
        except Exception as error:
            # Under several processes a failure is every rank's (e.g. one died): no retry alone.
            if self.logger is False or isinstance(error, UsageError) or self.sharded:
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
            callbacks = self._callbacks()
            result = _explain(self.cfg, model, batch, targets, False, callbacks, self.sharded)
        monitor = callbacks[0]
        self.steps = monitor.steps or self.cfg.method.max_iter
        return result

    def _callbacks(self) -> list:
        callbacks = make_callbacks(self.cfg, self.out, self.names, self.classes, self.truths)
        return callbacks if self.observe else callbacks[:1]  # the ConvergenceMonitor

    def log_results(self, rows: list[dict], quality: dict[str, float] | None = None) -> None:
        """What a sweep can optimise (:func:`~.metrics.run_metrics` of the chunk's summary
        rows: ``reward``, ``achieved_area``, ``area_error``, per area, ``quality/*``,
        ``convergence/*``) to the logger at the last step, so it ends in the W&B run's
        summary (fail-soft, like every log); where the masks started (``start``: the warm
        start's layer, or uniform) to the run's config."""
        if self.logger is False:
            return
        metrics = run_metrics(rows, quality)
        starts = sorted({r["start"] for r in rows if "start" in r})
        try:  # a FailSoftLogger never raises; a logger given unwrapped might
            if starts:
                self.logger.log_hyperparams({"start": ", ".join(starts)})
            self.logger.log_metrics(metrics, step=self.steps)
            self.logger.save()
        except Exception as error:
            warnings.warn(
                f"could not log {sorted(metrics)}: {error!r}", RuntimeWarning, stacklevel=2
            )

    def finish(self) -> str | None:
        return _finish(self.logger)

    @classmethod
    def for_chunk(
        cls, job: Job, number: int, ids: list[str], targets: list[list[int]], truths=None
    ):
        """The fit of chunk ``number`` of ``job``: images ``ids``, each explained for its
        ``targets`` (``truths``: each pair's object mask or None); its W&B run is called
        ``<job>-chunk<number>-<job id>``, in the job's group, tagged with the job's tags."""
        pair_ids = [i for i, ts in zip(ids, targets, strict=True) for _ in ts]
        names = pair_names(pair_ids, [t for ts in targets for t in ts])
        name = f"{job.name}-chunk{number}-{job.job_id}"
        classes = job.loaded.classes
        return cls(
            job.cfg,
            job.out,
            name,
            job.group,
            names,
            classes,
            job.tags,
            truths,
            observe=job.writes,
            sharded=job.sharded,
        )


def _explain(cfg: RunConfig, model, batch, targets, logger, callbacks=(), sharded=False):
    fit = Fit(logger=logger, callbacks=list(callbacks), sharded=sharded)
    return explain(model, batch, targets, mask_method(cfg.method), cfg.trainer, fit)


def _finish(logger) -> str | None:
    try:
        return finish_logger(logger)
    except Exception as error:  # a logging failure must not lose finished masks
        warnings.warn(f"could not close the logger: {error}", stacklevel=2)
        return None
