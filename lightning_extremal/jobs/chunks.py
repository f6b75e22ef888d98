"""How a run walks its images: the job's folder, model and images, chunks of one image shape,
each chunk's batch, the classes to explain and the key its results are stored under."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import RunConfig
from ..data.ground_truth import load_ground_truth
from ..data.models import LoadedModel, load_model
from ..data.sources import ImageSource, open_source
from ..engine.classifier import predicted_classes
from .store import ResultsStore, atomic_write_text, content_key

#: Version of the chunk records of runs: files written in an older format (other fields, other
#: quality scoring; 3 added ``converged``) are computed again, never mixed into a resumed run.
RECORD_FORMAT = 3


@dataclass
class Job:
    """What every chunk of a run shares: its configuration, model, images, folder and store."""

    cfg: RunConfig
    loaded: LoadedModel
    images: ImageSource
    out: Path
    store: ResultsStore
    #: Per image, object masks from ``data.ground_truth`` (None: the source's own, if any).
    folder_truths: list[list[torch.Tensor] | None] | None = None
    #: Offline W&B runs of the finished chunks (printed at the end with how to upload them).
    wandb_dirs: list[str] = field(default_factory=list)
    #: What summary.json holds, once written.
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.out.name

    @property
    def group(self) -> str:
        return self.cfg.logger.group or self.out.name

    def write_summary(self, summary: dict[str, Any]) -> None:
        self.summary = summary
        atomic_write_text(json.dumps(summary, indent=2), self.out / "summary.json")


def output_dir(cfg: RunConfig) -> Path:
    if cfg.output_dir:
        return Path(cfg.output_dir)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("outputs") / f"run-{stamp}"


def open_job(cfg: RunConfig) -> Job:
    """Load the model, open the images (and ``data.ground_truth``), make the output folder and
    write ``config.json``."""
    loaded = load_model(cfg.model)
    size = cfg.data.size if cfg.data.size is not None else loaded.size
    data = cfg.data
    images = open_source(
        data.source,
        size,
        data.crop,
        num_images=data.num_images,
        seed=data.synthetic_seed,
        multi_object=data.multi_object,
        root=data.root,
        image_set=data.image_set,
        ann_file=data.ann_file,
        image_dir=data.image_dir,
    )
    truths = None
    if data.ground_truth:
        truths = load_ground_truth(data.ground_truth, images.ids, size, data.crop)
    out = output_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    print(f"lightning-extremal: writing results to {out.resolve()}", flush=True)
    write_config(cfg, out)
    return Job(cfg, loaded, images, out, ResultsStore(out), truths)


def write_config(cfg: RunConfig, out: Path) -> None:
    atomic_write_text(json.dumps(asdict(cfg), indent=2, default=str), out / "config.json")


def chunk_indices(images: ImageSource, batch_size: int) -> list[list[int]]:
    """Indices of images in chunks of ``batch_size``, each chunk of one image shape."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, shape in enumerate(images.shapes):
        by_shape.setdefault(tuple(shape), []).append(i)
    return [
        idx[s : s + batch_size] for idx in by_shape.values() for s in range(0, len(idx), batch_size)
    ]


def chunk_key(cfg: RunConfig, ids: list[str], **extra: Any) -> str:
    """Key of what a chunk's results depend on: method, model, data, seed, precision, the
    image ids, and ``extra`` settings of the job kind (e.g. the inversion of layer runs)."""
    trainer = {"seed": cfg.trainer.seed, "precision": cfg.trainer.precision}
    return content_key(
        {
            "format": RECORD_FORMAT,
            "method": asdict(cfg.method),
            "model": asdict(cfg.model),
            "data": asdict(cfg.data),
            "trainer": trainer,
            "ids": ids,
            **extra,
        }
    )


def pending_chunks(job: Job, **extra: Any) -> Iterator[tuple[int, str, list[int]]]:
    """``(number, key, index)`` of each chunk still to compute (``chunks/chunk-NNNNN.pt``);
    finished ones (name and key on disk, with summary rows) are listed in the store and
    skipped. ``extra``: settings of the job kind that the key must include."""
    for number, index in enumerate(chunk_indices(job.images, job.cfg.data.batch_size)):
        name = f"chunk-{number:05d}"
        key = chunk_key(job.cfg, [job.images.ids[i] for i in index], **extra)
        done = job.store.load(name, key)
        if done is not None and "rows" in done and "ids" in done:
            job.store.add(name, key, ids=done["ids"], rows=done["rows"])
            continue
        yield number, key, index


def load_batch(images: ImageSource, index: list[int]) -> tuple[list[int], torch.Tensor] | None:
    """The readable images of ``index`` (unreadable ones are skipped and listed by the
    source) and their batch, or None when none could be read."""
    loaded = [(i, images.load(i)) for i in index]
    readable = [(i, image) for i, image in loaded if image is not None]
    if not readable:
        return None
    return [i for i, _ in readable], torch.stack([image for _, image in readable])


def targets_for(
    cfg_targets: Any, images: ImageSource, model, index: list[int], batch: torch.Tensor
) -> list[list[int]]:
    """Per image, the classes to explain: top1, the dataset's labels, a class id or a list."""
    if cfg_targets == "top1":
        return [[t] for t in predicted_classes(model, batch).tolist()]
    if cfg_targets == "labels":
        if images.labels is None:
            raise ValueError("data.targets=labels needs images with labels (e.g. data=demo)")
        return [list(images.labels[i]) for i in index]
    if isinstance(cfg_targets, int) and not isinstance(cfg_targets, bool):
        return [[cfg_targets] for _ in index]
    if isinstance(cfg_targets, (list, tuple)) and all(isinstance(t, int) for t in cfg_targets):
        return [list(cfg_targets) for _ in index]
    raise ValueError(
        "data.targets must be 'top1', 'labels', a class id or a list of class ids; "
        f"got {cfg_targets!r}"
    )
