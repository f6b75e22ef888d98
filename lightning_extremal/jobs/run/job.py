"""`lightning-extremal run`: explain a set of images with a model and write masks, figures and
a summary — input masks (:mod:`.image_job`) or a layer's (:mod:`.layer_job`).

Logging never costs results: loggers are fail-soft (:class:`~.fail_soft.FailSoftLogger`), the
observing callbacks disable themselves on a logging error, a logger that cannot be created
means a run without one, and a chunk whose fit still fails with a logger attached is run
again without it. Each case is a warning; masks.pt and summary.json are always written.
"""

from __future__ import annotations

import signal
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

from ...config import (
    RunConfig,
    validate_data,
    validate_inversion,
    validate_logger,
    validate_method,
    validate_trainer,
)
from ...engine.distributed import close_process_group, process_rank
from ...engine.stopping import stop_on_signals
from ...errors import Interrupted, ModelFailed, UsageError
from .chunks import claim_folder, open_job, output_dir, refuse_unclaimed
from .image_job import run_image_job
from .layer_job import run_layer_job
from .store import FolderLock
from .verdict import print_verdict


def run_job(cfg: RunConfig, *, overwrite: bool = False) -> Path:
    """Run (or resume) the configured job and return its folder (``overwrite``: clear a
    folder that holds another configuration's results instead of refusing it).

    Each chunk of ``data.batch_size`` images is one Lightning fit; its results go to the
    results store (``chunks/chunk-NNNNN.pt``, ``manifest.json``) the moment it finishes.
    Rerunning the same command skips every chunk whose file holds the same key
    (configuration, image contents, model weights), so a run killed at any point resumes
    without losing or redoing finished images, and memory does not grow with the number of
    chunks. One job at a time writes a folder (:class:`~.store.FolderLock`), and a folder
    holding another configuration's results is refused unless ``overwrite``.
    """
    check_config(cfg)
    cfg = replace(cfg, output_dir=str(output_dir(cfg)))  # config.json names the real folder
    try:
        job = open_job(cfg)  # a bad model or data fails before the folder is touched
        job.fresh = overwrite
        if job.writes:  # checked again under the lock; a refused folder stays as it was
            refuse_unclaimed(job.out, overwrite)
        with stop_on_signals(), FolderLock(job.out) if job.writes else nullcontext():
            if job.writes:
                claim_folder(cfg, job, overwrite)
            if cfg.method.kind == "input":
                run_image_job(job)
            else:  # channel | layer-spatial | invert | diff
                run_layer_job(job)
        close_process_group()  # every rank's collectives are done (a failed job keeps it)
    except ModelFailed as error:  # name the model as configured, not by its class
        raise error.named(cfg.model.name) from error.cause
    except Interrupted as stop:
        raise interrupted(stop, job) from None
    if not job.writes:
        return job.out
    for run_dir in job.wandb_dirs:
        print(f"W&B offline run: {run_dir}  (upload later: wandb sync {run_dir})")
    print(f"lightning-extremal: results in {job.out.resolve()}", flush=True)
    print_verdict(job.summary, job.out)
    return job.out


def interrupted(stop: Interrupted, job) -> Interrupted:
    """The one-line message of a job stopped by a signal: what is kept and how to resume."""
    name = signal.Signals(stop.signum).name
    done, total = len(job.store.entries), job.store.header.get("chunks_total", "?")
    return Interrupted(
        stop.signum,
        f"stopped by {name} at a step boundary: {done} of {total} chunks finished are kept in "
        f"{job.out} (manifest.json); rerun the same command to resume",
    )


def check_config(cfg: RunConfig) -> None:
    """Every check that needs no model or image: bad values fail before any work starts."""
    validate_method(cfg.method)
    validate_logger(cfg.logger)
    validate_trainer(cfg.trainer)
    validate_data(cfg.data)
    validate_inversion(cfg.inversion)
    _, world = process_rank(cfg.trainer)
    if world > 1 and cfg.method.kind != "input":
        raise UsageError(
            f"method.kind={cfg.method.kind} runs in one process; several processes "
            f"({world}: trainer.devices × trainer.num_nodes, torchrun or srun) explain input "
            "masks only (method.kind=input)"
        )
