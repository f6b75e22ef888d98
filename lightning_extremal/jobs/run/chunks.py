"""How a run walks its images: the job's folder, model and images, chunks of one image shape,
each chunk's batch, the classes to explain and the key its results are stored under."""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ...callbacks.progress import ChunkClock
from ...config import RunConfig
from ...data.ground_truth import load_ground_truth
from ...data.models import LoadedModel, load_model, source_digest, weights_digest
from ...data.sources import DATASET_SOURCES, ImageSource, list_image_files, open_source
from ...engine.classifier import predicted_classes, scores_fingerprint
from ...engine.distributed import process_rank, rank_block, shards_images
from ...engine.stopping import stop_if_requested
from ...errors import UsageError
from ...ops.digest import tensor_digest
from .store import (
    LEDGER_KEY,
    LOGGER_FOLDERS,
    RESULT_FILES,
    RESULT_FOLDERS,
    Ledger,
    ResultsStore,
    atomic_write_text,
    content_key,
    read_json,
    refuse_foreign,
    remove_partial_files,
    visible_entries,
)

#: Version of the chunk records of runs: files written in an older format (other fields, other
#: quality scoring; 3 added ``converged``; 4 keys of image and weight content, ``files``; 5 the model's
#: fingerprint; 6 ``converged`` judged by a relative area tolerance and a stalled reward) are
#: computed again, never mixed into a resumed run.
RECORD_FORMAT = 6
#: Folders where a run's chunks write figures (each chunk lists the files it wrote there).
FIGURE_FOLDERS = tuple(name for name in RESULT_FOLDERS if name != "chunks")
#: Manifest keys: the file clock at the start of the chunk being computed (absent between
#: chunks), and the files of others the job found in its loggers' folders.
PENDING = "writing_since_ns"
OTHERS = "others_files"


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
    #: The offline W&B run of the job, once closed (printed at the end with how to upload it).
    wandb_dirs: list[str] = field(default_factory=list)
    #: The job's one logger, shared by its chunks (None: not made yet; False: none), see
    #: :func:`~.fitting.job_logger`.
    logger: Any = None
    #: What summary.json holds, once written.
    summary: dict[str, Any] = field(default_factory=dict)
    #: What the model computes: weights, code and probe scores (part of every chunk key;
    #: computed once per job, :func:`~..data.models.model_fingerprint`).
    model_digest: str = ""
    #: A short id of this job (a new one per invocation), in its W&B run's name.
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    #: This process's global rank and the number of processes (torchrun, SLURM or
    #: Lightning's ``ddp``: each runs this job; only rank 0 writes the folder).
    rank: int = 0
    world: int = 1
    #: Whether each rank decodes and perturbs only its own block of each chunk's images.
    sharded: bool = False
    #: The run clears the folder's results (``--overwrite``): every chunk is computed.
    fresh: bool = False
    #: Files of others found where the job writes when it claimed the folder (in loggers'
    #: folders): never listed as the job's, never touched.
    foreign: set[str] = field(default_factory=set)

    @property
    def writes(self) -> bool:
        """Whether this process writes the folder (results, figures, logs): rank 0."""
        return self.rank == 0

    @property
    def name(self) -> str:
        return self.out.name

    @property
    def group(self) -> str:
        """The default W&B group of the job's runs (``logger.group`` and
        ``$WANDB_RUN_GROUP`` override it)."""
        return self.out.name

    @property
    def tags(self) -> tuple[str, ...]:
        """W&B tags of the job's runs: the kind of mask, the variant, the model's name."""
        model = Path(self.cfg.model.name.rsplit(":", 1)[-1]).name  # a path, module:attr, name
        return (self.cfg.method.kind, self.cfg.method.variant, model)

    def write_summary(self, summary: dict[str, Any]) -> None:
        self.summary = summary
        atomic_write_text(json.dumps(summary, indent=2), self.out / "summary.json")
        self.store.ledger.record("summary.json")
        self.store.write_manifest()

    def input_order(self) -> dict[str, int]:
        """Image id → position in the input: results are written in this order."""
        return {image_id: i for i, image_id in enumerate(self.images.ids)}

    def result_rows(self) -> list[dict[str, Any]]:
        """The summary rows of every listed chunk, in the input order of their images."""
        order = self.input_order()
        rows = [row for entry in self.store.entries.values() for row in entry["rows"]]
        return sorted(rows, key=lambda row: order.get(row.get("image"), 0))


def output_dir(cfg: RunConfig) -> Path:
    if cfg.output_dir:
        return Path(cfg.output_dir)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("outputs") / f"run-{stamp}"


#: ``data.source`` values that name images rather than a folder or a glob.
NAMED_SOURCES = ("demo", "synthetic", "photos", *DATASET_SOURCES)


def open_job(cfg: RunConfig) -> Job:
    """Load the model and open the images (and ``data.ground_truth``): a bad model or data
    fails here, before the output folder is touched; a folder without images fails before
    the model (and any download of its weights)."""
    if cfg.data.source not in NAMED_SOURCES:  # a folder or a glob
        list_image_files(cfg.data.source)  # raises naming the folder when it has no images
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
    out = Path(cfg.output_dir) if cfg.output_dir else output_dir(cfg)
    job = Job(cfg, loaded, images, out, ResultsStore(out), truths)
    job.model_digest = model_fingerprint(loaded.model, cfg.model.name, tuple(images.shapes[0]))
    job.rank, job.world = process_rank(cfg.trainer)
    job.sharded = shards_images(cfg.trainer)
    return job


def model_fingerprint(model, name: str, shape: tuple[int, ...]) -> str:
    """What a model computes, as a short hash: its weights, the file holding its code or bytes
    and its scores on seeded probe images of ``shape`` (C×H×W) — so changed code or
    preprocessing with the same weights is never taken for the old model."""
    parts = [weights_digest(model), source_digest(name), scores_fingerprint(model, shape)]
    return content_key({"model": parts})


def claim_folder(cfg: RunConfig, job: Job, overwrite: bool) -> None:
    """Make ``job.out`` this configuration's folder, touching only files jobs wrote there (the
    :class:`~.store.Ledger` of its manifest): a non-empty folder without a manifest, or one
    holding another configuration's results, is refused unless ``overwrite``, which deletes
    only the listed files and says what it keeps; files of others where the run writes are
    always refused, never overwritten."""
    out = job.out
    ours = refuse_unclaimed(out, overwrite)
    ledger = Ledger.read(out, "manifest.json")
    if ours:
        adopt_unfinished(read_json(out / "manifest.json") or {}, job, ledger)
    holds_results = any(name.startswith("chunks/") for name in ledger.files)
    changed = changed_settings(out / "config.json", cfg) if holds_results else []
    if changed and not overwrite:
        raise UsageError(
            f"{out} holds the results of another configuration ({'; '.join(changed[:3])}"
            f"{'; …' if len(changed) > 3 else ''}): rerun with --overwrite to clear it, or "
            "choose another output_dir="
        )
    writes = [n for n in RESULT_FILES + RESULT_FOLDERS if not (ours and n == "manifest.json")]
    take_folder(job, ledger, writes, "a run", clear=bool(changed or overwrite))
    job.store.ledger = ledger
    job.store.header[OTHERS] = sorted(job.foreign)
    print(f"lightning-extremal: writing results to {out.resolve()}", flush=True)
    write_config(cfg, out)
    ledger.record("config.json")
    job.store.write_manifest()


def refuse_unclaimed(out: Path, overwrite: bool) -> bool:
    """Refuse a non-empty folder that holds no run (no manifest listing what jobs wrote)
    unless ``overwrite``; whether it holds one. Checked before the folder is locked too, so a
    refused folder is left as it was."""
    ours = LEDGER_KEY in (read_json(out / "manifest.json") or {})
    others = visible_entries(out)
    if not ours and others and not overwrite:
        raise UsageError(
            f"{out} is not empty ({', '.join(others[:3])}{', …' if len(others) > 3 else ''}) "
            "and holds no lightning-extremal run: choose a new or empty output_dir=, or rerun "
            "with --overwrite to write beside those files (they are kept)"
        )
    return ours


def take_folder(job: Job, ledger: Ledger, writes: list[str], what: str, clear: bool) -> None:
    """The last step of claiming a folder for ``what`` (a run, an analysis): refuse files of
    others where it writes (``writes``: names of files and folders), then, if ``clear``,
    delete what the ledger owns; note the files of others in the loggers' folders
    (``job.foreign``), which the job never lists as its own."""
    remove_partial_files(job.out, writes)  # half-written files of a killed job
    refuse_foreign(job.out, ledger.foreign(writes), what)
    if clear:
        say_cleared(job.out, ledger.clear())
    job.foreign = set(ledger.foreign(LOGGER_FOLDERS))


def say_cleared(out: Path, removed: list[str]) -> None:
    """Say what ``--overwrite`` deleted, and that everything else in the folder is kept."""
    kept = sum(1 for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))
    kept -= (out / "manifest.json").is_file()
    print(
        f"lightning-extremal: cleared {out}: removed {len(removed)} file(s) earlier jobs wrote"
        f"{f', kept {kept} other file(s)' if kept else ''}",
        flush=True,
    )


def result_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The parts of a configuration (as in config.json) that results depend on."""
    trainer = config.get("trainer") or {}
    return {
        "method": config.get("method"),
        "model": config.get("model"),
        "data": config.get("data"),
        "inversion": config.get("inversion"),
        "trainer": {"seed": trainer.get("seed"), "precision": trainer.get("precision")},
    }


def changed_settings(path: Path, cfg: RunConfig) -> list[str]:
    """``key: old → new`` for each result setting of ``cfg`` that differs from the
    configuration in ``path`` (none when there is no such file). A setting left unset
    (None, e.g. ``method.layer``: the default layer) matches what the folder resolved."""
    try:
        old = result_settings(json.loads(path.read_text()))
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        return [f"{path.name}: unreadable"]
    new = result_settings(json.loads(json.dumps(asdict(cfg), default=str)))
    return [
        f"{group}.{key}: {old_value!r} → {value!r}"
        for group, values in new.items()
        for key, value in (values or {}).items()
        if value is not None and (old_value := (old.get(group) or {}).get(key, "unset")) != value
    ]


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


def chunk_key(job: Job, index: list[int], **extra: Any) -> str:
    """Key of what a chunk's results depend on: method, model, data, seed, precision, the
    images' ids and content, the model's fingerprint (weights, code, probe scores), the folder
    ground truth, and ``extra``
    settings of the job kind (e.g. the inversion of layer runs)."""
    cfg, images = job.cfg, job.images
    trainer = {"seed": cfg.trainer.seed, "precision": cfg.trainer.precision}
    truths = [tensor_digest(*job.folder_truths[i]) for i in index] if job.folder_truths else None
    return content_key(
        {
            "format": RECORD_FORMAT,
            "method": asdict(cfg.method),
            "model": asdict(cfg.model),
            "model_fingerprint": job.model_digest,
            "data": asdict(cfg.data),
            "trainer": trainer,
            "ids": [images.ids[i] for i in index],
            "content": [images.digest(i) for i in index],
            "truths": truths,
            **extra,
        }
    )


def plan_chunks(job: Job, **extra: Any) -> list[tuple[int, str, list[int]]]:
    """``(number, key, index)`` of each chunk still to compute (``chunks/chunk-NNNNN.pt``);
    finished ones (name and key on disk, with summary rows) are listed in the store and
    skipped, and a resume says how many. ``extra``: settings the key must include."""
    chunks = chunk_indices(job.images, job.cfg.data.batch_size)
    pending, changed = [], 0
    for number, index in enumerate(chunks):
        name = f"chunk-{number:05d}"
        key = chunk_key(job, index, **extra)
        done = None if job.fresh else job.store.load(name, key)
        if done is not None and "rows" in done and "ids" in done:
            job.store.add(name, key, ids=done["ids"], rows=done["rows"], files=done["files"])
            continue
        changed += job.store.path(name).is_file()
        pending.append((number, key, index))
    job.store.header.update(chunks_total=len(chunks), complete=False)
    if job.writes:
        say_resumed(len(chunks), len(pending), changed)
    return pending


def say_resumed(chunks: int, pending: int, changed: int) -> None:
    """Say how much of a run was already done, and how many chunks on disk are stale."""
    if pending < chunks:
        print(
            f"lightning-extremal: resuming: {chunks - pending} of {chunks} chunks done, "
            f"{pending} to run",
            flush=True,
        )
    if changed:
        print(
            f"lightning-extremal: {changed} chunk(s) on disk were computed from other images, "
            "weights or settings: computing them again",
            flush=True,
        )


def run_chunks(job: Job, compute: Callable[[int, list[int]], dict | None], **extra) -> None:
    """Compute each pending chunk (``compute(number, index)``: its record, figures written,
    or None when none of its images could be read) and save it with its key and the files
    it wrote; then remove the files no chunk wrote (stale figures of earlier runs). The other
    ranks of a multi-process job compute their share of each chunk (``compute`` returns None
    there) and write nothing. Progress (``trainer.progress``): each chunk's fits are labelled
    ``chunk k/n`` among this invocation's pending chunks, with a job ETA from the mean time of
    those it finished (:class:`~lightning_extremal.callbacks.progress.ChunkClock`)."""
    pending = plan_chunks(job, **extra)
    clock = ChunkClock(len(pending), show=job.writes and bool(job.cfg.trainer.progress))
    for position, (number, key, index) in enumerate(pending, 1):
        stop_if_requested()  # a signal between chunks: nothing of the next one is started
        with chunk_files_listed(job) as since, clock.chunk(position):
            record = compute(number, index)
        if record is None:
            continue
        record.update(key=key, files=files_since(job, since))
        name = f"chunk-{number:05d}"
        job.store.save(name, record, ids=record["ids"], rows=record["rows"], files=record["files"])
    if job.writes:
        prune_stale_files(job)
        job.store.header["complete"] = True


@contextmanager
def chunk_files_listed(job: Job) -> Iterator[int]:
    """Around one chunk's computation: the files it writes (figures, logs) are listed in the
    ledger when it ends, however it ends (finished, failed, interrupted); for a process
    killed outright, the manifest says since when a chunk was being written
    (:data:`PENDING`), and the next job adopts what appeared in the job's folders since
    (:func:`adopt_unfinished`). Yields the file clock at the start."""
    if not job.writes:
        yield 0
        return
    since = file_clock(job.out)
    job.store.header[PENDING] = since
    job.store.write_manifest()
    try:
        yield since
    finally:
        job.store.ledger.record(*files_since(job, since, FIGURE_FOLDERS + LOGGER_FOLDERS))
        job.store.header.pop(PENDING, None)
        job.store.write_manifest()


def adopt_unfinished(manifest: dict[str, Any], job: Job, ledger: Ledger) -> None:
    """List the files an earlier job wrote in its folders while a chunk was being computed
    when it was killed (newer than the manifest's :data:`PENDING` clock, not among the
    :data:`OTHERS` it found there): they are its, and go like any stale figure."""
    since = manifest.get(PENDING)
    if not isinstance(since, int):
        return
    others = set(manifest.get(OTHERS) or ())
    found = written_files(replace(job, foreign=others), FIGURE_FOLDERS + LOGGER_FOLDERS)
    ledger.record(
        *(name for name, mtime in found.items() if mtime >= since and name not in ledger.files)
    )


def written_files(job: Job, folders: tuple[str, ...]) -> dict[str, int]:
    """Files in (or named by) ``folders`` of the job's folder that are not others' (those there when the
    job claimed it, unlisted), relative path → modification time (ns)."""
    found = {}
    for folder in folders:
        top = job.out / folder
        for path in top.rglob("*") if top.is_dir() else [top] if top.is_file() else ():
            name = path.relative_to(job.out).as_posix()
            if path.is_file() and name not in job.foreign:
                found[name] = path.stat().st_mtime_ns
    return found


def file_clock(out: Path) -> int:
    """The file system's time now (ns), as it stamps files: the modification time of a file
    written now (``time.time_ns`` may run ahead of the kernel's coarse file times)."""
    probe = out / ".clock"
    probe.write_bytes(b"")
    now = probe.stat().st_mtime_ns
    probe.unlink()
    return now


def files_since(job: Job, since_ns: int, folders: tuple[str, ...] = FIGURE_FOLDERS) -> list[str]:
    return sorted(name for name, mtime in written_files(job, folders).items() if mtime >= since_ns)


def prune_stale_files(job: Job) -> None:
    """Remove the figures and chunk files of earlier runs that the manifest no longer lists
    (e.g. of images no longer in the folder) — only files the ledger says jobs wrote."""
    entries = job.store.entries.values()
    listed = {f for entry in entries for f in entry.get("files", ())}
    listed |= {entry["file"] for entry in entries}
    ledger = job.store.ledger
    ours = [name for name in ledger.files if name.split("/", 1)[0] in RESULT_FOLDERS]
    stale = ledger.remove(name for name in ours if name not in listed)
    if stale:
        print(f"lightning-extremal: removed {len(stale)} stale file(s) of earlier runs", flush=True)


def own_share(job: Job, index: list[int]) -> list[int]:
    """The images of a chunk this process decodes and perturbs: its rank's contiguous block
    under sharding, else all of them."""
    return index[rank_block(len(index), job.rank, job.world)] if job.sharded else index


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
