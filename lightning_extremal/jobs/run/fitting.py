"""One chunk's optimisation with the job's logger and observing callbacks, the fallbacks that
keep a logging failure from losing its masks, and the job's one logger (one W&B run a job)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from ...api import Fit, explain, mask_method
from ...callbacks import ConvergenceMonitor, FinalOverlays, MaskEvolution, StartingState
from ...config import RunConfig
from ...errors import UnexplainableModelError, UsageError
from ...naming import pair_names
from .chunks import Job, file_clock, files_since
from .fail_soft import finish_logger, make_logger, unwrap_logger
from .metrics import job_metrics, run_metrics
from .store import LOGGER_FOLDERS


def make_callbacks(cfg: RunConfig, out: Path, names: list[str], classes, truths=None) -> list:
    """The observing callbacks of one chunk (see ``logger.*`` in the config); ``truths``:
    each pair's object mask (or None) for the final table's IoU and pointing columns. The
    starting state comes first: its step-0 row is written before later steps' media."""
    log = cfg.logger
    callbacks: list = [
        StartingState(),
        ConvergenceMonitor(log.early_stop_tol, log.early_stop_window),
    ]
    if log.mask_every_n_steps:
        callbacks.append(
            MaskEvolution(log.mask_every_n_steps, out / "mask_evolution", names, classes)
        )
    if log.final_table:
        callbacks.append(FinalOverlays(out / "final_overlays", names, classes, truths=truths))
    return callbacks


@contextmanager
def job_logging(job: Job) -> Iterator[None]:
    """Around a job's chunks: the job's one logger (:func:`job_logger`, made at the first
    chunk that runs) is closed at the end however the job ends, with the job's metrics
    (:func:`~.metrics.job_metrics` of summary.json: every chunk, also those of an earlier,
    resumed job) as the W&B run's summary; its files are listed in the folder's ledger."""
    job.logger = None
    since = file_clock(job.out) if job.writes else 0
    try:
        yield
    finally:
        close_job_logger(job)
        if job.writes and job.out.is_dir():
            job.store.ledger.record(*files_since(job, since, LOGGER_FOLDERS))
            job.store.write_manifest()


def job_logger(job: Job):
    """The job's logger, made at its first call (``False``: none; other ranks never log).

    One W&B run per job, named ``<job>-<job id>`` (a new id per invocation) in the job's
    group: the chunks are fits in turn within it, each at the job steps after the last
    (:class:`~...engine.loggers.StepWandbLogger`). W&B's own advice for a job of many items is
    one run whose media go under a few shared keys with a step slider (``define_metric`` with
    a custom step for the charts), not a run per item: a run per chunk made hundreds of runs
    and thousands of panels. A resumed job (the same command after a crash) is a new run in
    the same group that logs the chunks it computes; its summary is the whole job's.
    """
    if job.logger is None:
        job.logger = False
        if job.writes:
            name = f"{job.name}-{job.job_id}"
            try:
                job.logger = make_logger(
                    job.cfg.logger, job.out, name, job.group, asdict(job.cfg), job.tags
                )
            except Exception as error:
                warnings.warn(
                    f"could not create the {job.cfg.logger.name} logger ({error!r}); "
                    f"{job.name} runs without one",
                    RuntimeWarning,
                    stacklevel=3,
                )
    return job.logger


def close_job_logger(job: Job) -> None:
    """Give the job's run its summary (the job's metrics, where the masks started) and close
    it; an offline W&B run's folder goes to ``job.wandb_dirs``."""
    logger, job.logger = job.logger, None
    if not logger:
        return
    if job.summary:
        rows = job.summary.get("results", [])
        starts = sorted({r["start"] for r in rows if "start" in r})
        try:  # a FailSoftLogger never raises; a logger given unwrapped might
            if starts:
                logger.log_hyperparams({"start": ", ".join(starts)})
            write_summary(logger, job_metrics(job.summary))
        except Exception as error:
            warnings.warn(
                f"could not log the job's summary: {error!r}", RuntimeWarning, stacklevel=2
            )
    run_dir = _finish(logger)
    if run_dir:
        job.wandb_dirs.append(run_dir)


def write_summary(logger, metrics: dict[str, float]) -> None:
    """``metrics`` as the W&B run's summary (the last value logged otherwise: the last
    chunk's); other loggers keep each chunk's values as logged."""
    inner = unwrap_logger(logger)
    if getattr(logger, "failed", None) is not None or not hasattr(inner, "log_row"):
        return
    guard = getattr(logger, "_guard", lambda what, call: call())
    guard("summary", lambda: _set_summary(inner.experiment, metrics))


def _set_summary(run, metrics: dict[str, float]) -> None:
    run.log({}, commit=True)  # the last step's row first: its values would overwrite these
    run.summary.update(metrics)


class ChunkFit:
    """One chunk's optimisation with the job's logger and the chunk's callbacks, and the
    fallbacks that keep a logging failure from losing its masks."""

    def __init__(self, job: Job, number: int, names, truths=None) -> None:
        self.job, self.number, self.names, self.truths = job, number, names, truths
        self.cfg, self.out, self.classes = job.cfg, job.out, job.loaded.classes
        self.name = f"{job.name} chunk {number}"
        self.steps = job.cfg.method.max_iter
        # The other ranks of a multi-process job neither log nor draw (rank 0 does), but all
        # watch convergence, so that all stop at the same step.
        self.observe, self.sharded = job.writes, job.sharded
        self.logger = job_logger(job) if self.observe else False

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
        self._start_fit()
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
                "and running the chunk again without one (and the rest of the job)",
                RuntimeWarning,
                stacklevel=2,
            )
            close_job_logger(self.job)
            self.job.logger = self.logger = False
            callbacks = self._callbacks()
            result = _explain(self.cfg, model, batch, targets, False, callbacks, self.sharded)
        monitor = next(c for c in callbacks if isinstance(c, ConvergenceMonitor))
        self.steps = monitor.steps or self.cfg.method.max_iter
        return result

    def _start_fit(self) -> None:
        """Place this chunk's steps after the last the job's run logged (a W&B logger)."""
        start = getattr(unwrap_logger(self.logger), "start_fit", None)
        if callable(start):
            start(chunk=self.number)

    def _callbacks(self) -> list:
        callbacks = make_callbacks(self.cfg, self.out, self.names, self.classes, self.truths)
        # The other ranks only watch convergence (and stop with rank 0).
        return (
            callbacks
            if self.observe
            else [c for c in callbacks if isinstance(c, ConvergenceMonitor)]
        )

    def log_results(self, rows: list[dict], quality: dict[str, float] | None = None) -> None:
        """What a sweep can optimise (:func:`~.metrics.run_metrics` of the chunk's summary
        rows: ``reward``, ``achieved_area``, ``area_error``, per area, ``quality/*``,
        ``convergence/*``) to the logger at the chunk's last step, so each chunk's values are
        in the run's history (the run's summary gets the whole job's at its end,
        :func:`close_job_logger`); fail-soft, like every log."""
        if self.logger is False:
            return
        metrics = run_metrics(rows, quality)
        try:  # a FailSoftLogger never raises; a logger given unwrapped might
            self.logger.log_metrics(metrics, step=self.steps)
            self.logger.save()
        except Exception as error:
            warnings.warn(
                f"could not log {sorted(metrics)}: {error!r}", RuntimeWarning, stacklevel=2
            )

    @classmethod
    def for_chunk(
        cls, job: Job, number: int, ids: list[str], targets: list[list[int]], truths=None
    ):
        """The fit of chunk ``number`` of ``job``: images ``ids``, each explained for its
        ``targets`` (``truths``: each pair's object mask or None), logged to the job's run."""
        pair_ids = [i for i, ts in zip(ids, targets, strict=True) for _ in ts]
        names = pair_names(pair_ids, [t for ts in targets for t in ts])
        return cls(job, number, names, truths)


def _explain(cfg: RunConfig, model, batch, targets, logger, callbacks=(), sharded=False):
    fit = Fit(logger=logger, callbacks=list(callbacks), sharded=sharded)
    return explain(model, batch, targets, mask_method(cfg.method), cfg.trainer, fit)


def _finish(logger) -> str | None:
    try:
        return finish_logger(logger)
    except Exception as error:  # a logging failure must not lose finished masks
        warnings.warn(f"could not close the logger: {error}", stacklevel=2)
        return None
