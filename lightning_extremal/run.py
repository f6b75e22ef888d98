"""The main job: explain a set of images with a model and write masks, overlays and a summary.

Logging never costs results: loggers are fail-soft (:class:`~.loggers.FailSoftLogger`), the
observing callbacks disable themselves on a logging error, a logger that cannot be created
means a run without one, and a chunk whose fit still fails with a logger attached is run
again without it. Each case is a warning; masks.pt and summary.json are always written.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .api import extremal_perturbation, method_options, predicted_classes
from .config import RunConfig, validate_logger, validate_method, validate_run_options
from .images import ImageSource, open_source
from .loggers import finish_logger, make_logger
from .models import load_model
from .quality import load_ground_truth, mask_quality, pair_truth, summarize_quality

#: masks.pt (all masks in one file) is written when a run has at most this many pairs;
#: larger runs keep their masks in the per-chunk files listed in manifest.json.
MERGE_LIMIT = 4096


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def output_dir(cfg: RunConfig) -> Path:
    if cfg.output_dir:
        return Path(cfg.output_dir)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("outputs") / f"run-{stamp}"


def _targets_for(
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


def _chunks(images: ImageSource, batch_size: int) -> list[list[int]]:
    """Indices of images in chunks of ``batch_size``, each chunk of one image shape."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, shape in enumerate(images.shapes):
        by_shape.setdefault(tuple(shape), []).append(i)
    return [
        idx[s : s + batch_size] for idx in by_shape.values() for s in range(0, len(idx), batch_size)
    ]


def _chunk_key(cfg: RunConfig, ids: list[str], **extra: Any) -> str:
    """Hash of what a chunk's results depend on: method, model, data, seed, precision, the
    image ids, and ``extra`` settings of the job kind (e.g. the inversion of layer runs)."""
    payload = json.dumps(
        {
            "method": asdict(cfg.method),
            "model": asdict(cfg.model),
            "data": asdict(cfg.data),
            "trainer": {"seed": cfg.trainer.seed, "precision": cfg.trainer.precision},
            "ids": ids,
            **extra,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _pair_names(ids: list[str], targets: list[list[int]]) -> list[str]:
    """One name per (image, target) pair in the API's pair order: the image id, plus the
    target when the image has several."""
    return [
        i if len(ts) == 1 else f"{i}_{t}" for i, ts in zip(ids, targets, strict=True) for t in ts
    ]


def run_job(cfg: RunConfig) -> Path:
    """Run the configured job, streaming chunk by chunk through a results store.

    Each chunk is one Lightning fit; its results go to ``chunks/chunk-NNNNN.pt`` (atomic
    write) and its summary rows to ``manifest.json`` (atomic rewrite) the moment it finishes,
    with its overlays. Rerunning the same command skips every chunk whose file holds the same
    key (configuration + image ids), so a run killed at any point resumes without losing or
    redoing finished images, and memory does not grow with the number of chunks.
    """
    validate_method(cfg.method)
    validate_logger(cfg.logger)
    validate_run_options(cfg.trainer.precision, cfg.trainer.compile, cfg.trainer.channels_last)
    if not isinstance(cfg.data.batch_size, int) or cfg.data.batch_size < 1:
        raise ValueError(f"data.batch_size must be a positive integer; got {cfg.data.batch_size!r}")
    loaded = load_model(cfg.model)
    size = cfg.data.size if cfg.data.size is not None else loaded.size
    images = open_source(
        cfg.data.source,
        size,
        cfg.data.crop,
        num_images=cfg.data.num_images,
        seed=cfg.data.synthetic_seed,
        multi_object=cfg.data.multi_object,
        root=cfg.data.root,
        image_set=cfg.data.image_set,
        ann_file=cfg.data.ann_file,
        image_dir=cfg.data.image_dir,
    )
    folder_truths = (
        load_ground_truth(cfg.data.source, cfg.data.ground_truth, images.ids, size, cfg.data.crop)
        if cfg.data.ground_truth
        else None
    )
    out = output_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    print(f"lightning-extremal: writing results to {out.resolve()}", flush=True)
    atomic_write_text(json.dumps(asdict(cfg), indent=2, default=str), out / "config.json")
    if cfg.method.kind != "input":  # channel | layer-spatial | invert | diff
        from .layer_job import run_layer_job

        return run_layer_job(cfg, loaded, images, out)
    job = out.name
    group = cfg.logger.group or job
    wandb_dirs: list[str] = []
    manifest: list[dict[str, Any]] = []
    for number, index in enumerate(_chunks(images, cfg.data.batch_size)):
        path = out / "chunks" / f"chunk-{number:05d}.pt"
        key = _chunk_key(cfg, [images.ids[i] for i in index])
        done = _finished_chunk(path, key)
        if done is not None:
            manifest.append(done)
            continue
        loaded_images = [(i, images.load(i)) for i in index]
        index = [i for i, image in loaded_images if image is not None]
        if not index:
            continue
        batch = torch.stack([image for _, image in loaded_images if image is not None])
        ids = [images.ids[i] for i in index]
        targets = _targets_for(cfg.data.targets, images, loaded.model, index, batch)
        truths = (
            [folder_truths[i] for i in index] if folder_truths else [images.truth(i) for i in index]
        )
        chunk_truths = [
            pair_truth(truths[n], images.labels[i] if images.labels else None, t)
            for n, (i, ts) in enumerate(zip(index, targets, strict=True))
            for t in ts
        ]
        run = _ChunkRun(
            cfg, out, f"{job}-chunk{number}", group, _pair_names(ids, targets), loaded.classes
        )
        try:
            result = run.explain(loaded.model, batch, targets)
            quality = mask_quality(result.masks, cfg.method.areas, chunk_truths)
            run.log_quality(summarize_quality(quality["iou"], quality["pointing_hit"]))
        finally:
            run_dir = run.finish()
        if run_dir:
            wandb_dirs.append(run_dir)
        record = {
            "key": key,
            "ids": [ids[i] for i in result.image_index.tolist()],
            "images": batch[result.image_index],
            "targets": result.targets,
            "areas": result.target_areas,
            "masks": result.masks,
            "rewards": result.rewards,
            "achieved_areas": result.areas,
            "history": result.history,
            "steps": run.steps,
            "iou": quality["iou"],
            "pointing_hit": quality["pointing_hit"],
            "rows": _summary_rows(cfg, loaded.classes, result, quality, run.steps, ids),
        }
        atomic_save(record, path)
        _write_overlays(out, record, loaded.classes)
        manifest.append(_manifest_entry(path, record))
        atomic_write_text(json.dumps({"chunks": manifest}, indent=1), out / "manifest.json")
        del record, result, batch
    atomic_write_text(json.dumps({"chunks": manifest}, indent=1), out / "manifest.json")
    _write_outputs(out, manifest, loaded.classes, images.skipped)
    for run_dir in wandb_dirs:
        print(f"W&B offline run: {run_dir}  (upload later: wandb sync {run_dir})")
    print(f"lightning-extremal: results in {out.resolve()}", flush=True)
    return out


def load_chunk(path: Path, key: str) -> dict[str, Any] | None:
    """A chunk file's contents if it is on disk and holds this key, else None."""
    if not path.exists():
        return None
    try:
        saved = torch.load(path, weights_only=False, map_location="cpu")
    except (RuntimeError, OSError, EOFError):  # a foreign or damaged file: redo the chunk
        return None
    return saved if isinstance(saved, dict) and saved.get("key") == key else None


def _finished_chunk(path: Path, key: str) -> dict[str, Any] | None:
    """The manifest entry of a chunk already on disk with this key, else None."""
    saved = load_chunk(path, key)
    if saved is None or "rows" not in saved:
        return None
    return _manifest_entry(path, saved)


def _manifest_entry(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "file": f"chunks/{path.name}",
        "key": record["key"],
        "ids": record["ids"],
        "rows": record["rows"],
    }


def _summary_rows(cfg, classes, result, quality, steps, ids) -> list[dict[str, Any]]:
    """One summary row per (image, target) pair and area."""
    rows = []
    pair_ids = [ids[i] for i in result.image_index.tolist()]
    for p, image_id in enumerate(pair_ids):
        target = int(result.targets[p])
        name = classes[target] if classes and target < len(classes) else str(target)
        for k, area in enumerate(cfg.method.areas):
            row = {
                "image": image_id,
                "target": target,
                "target_name": name,
                "area": float(area),
                "reward": float(result.rewards[p, k]),
                "achieved_area": float(result.areas[p, k]),
                "steps": int(steps if steps is not None else result.history["reward"].shape[-1]),
            }
            if quality["pointing_hit"][p] is not None:
                # Pair-level scores (IoU at the largest area; pointing on the summed masks).
                row.update(iou=quality["iou"][p], pointing_hit=quality["pointing_hit"][p])
            rows.append(row)
    return rows


def make_callbacks(cfg: RunConfig, out: Path, names: list[str], classes) -> list:
    """The observing callbacks of one chunk (see ``logger.*`` in the config)."""
    from lightning_extremal.callbacks import ConvergenceMonitor, FinalOverlays, MaskEvolution

    log = cfg.logger
    callbacks: list = [ConvergenceMonitor(log.early_stop_tol, log.early_stop_window)]
    if log.mask_every_n_steps:
        callbacks.append(MaskEvolution(log.mask_every_n_steps, out / "mask_evolution", names))
    if log.final_table:
        callbacks.append(FinalOverlays(out / "final_overlays", names, classes))
    return callbacks


class _ChunkRun:
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

    def explain(self, model, batch, targets):
        callbacks = make_callbacks(self.cfg, self.out, self.names, self.classes)
        try:
            result = _explain(self.cfg, model, batch, targets, self.logger, callbacks)
        except Exception as error:
            if self.logger is False:
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

    def log_quality(self, quality: dict[str, float] | None) -> None:
        """``quality/iou``, ``quality/pointing`` to the logger (fail-soft, like every log)."""
        if quality is None or self.logger is False:
            return
        metrics = {f"quality/{k}": v for k, v in quality.items() if k != "pairs"}
        try:  # a FailSoftLogger never raises; a logger given unwrapped might
            self.logger.log_metrics(metrics, step=self.steps)
            self.logger.save()
        except Exception as error:
            warnings.warn(
                f"could not log {sorted(metrics)}: {error!r}", RuntimeWarning, stacklevel=2
            )

    def finish(self) -> str | None:
        return _finish(self.logger)


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
        logger=logger,
        callbacks=list(callbacks),
    )


def _finish(logger) -> str | None:
    try:
        return finish_logger(logger)
    except Exception as error:  # a logging failure must not lose finished masks
        warnings.warn(f"could not close the logger: {error}", stacklevel=2)
        return None


def _write_overlays(out: Path, record: dict[str, Any], classes) -> None:
    """One overlay PNG per (image, target) pair of a finished chunk."""
    from .viz import save_overlay_figure

    areas = record["areas"].tolist()
    for p, image_id in enumerate(record["ids"]):
        target = int(record["targets"][p])
        name = classes[target] if classes and target < len(classes) else str(target)
        stem = f"{image_id}_{target}" if record["ids"].count(image_id) > 1 else image_id
        save_overlay_figure(
            out / "overlays" / f"{stem}.png",
            record["images"][p],
            record["masks"][p],
            areas,
            f"{image_id}: {name}",
            record["rewards"][p].tolist(),
        )


def _write_outputs(out: Path, manifest: list[dict[str, Any]], classes, skipped) -> None:
    """summary.json from the manifest; masks.pt merged from the chunk files if not too big."""
    rows = [row for entry in manifest for row in entry["rows"]]
    pairs = sum(len(entry["ids"]) for entry in manifest)
    if manifest and pairs <= MERGE_LIMIT:
        parts = [
            torch.load(out / e["file"], weights_only=False, map_location="cpu") for e in manifest
        ]
        merged = {
            "ids": [i for r in parts for i in r["ids"]],
            "targets": torch.cat([r["targets"] for r in parts]),
            "areas": parts[0]["areas"],
            "masks": torch.cat([r["masks"] for r in parts]),
            "rewards": torch.cat([r["rewards"] for r in parts]),
            "achieved_areas": torch.cat([r["achieved_areas"] for r in parts]),
            "classes": classes,
        }
        atomic_save(merged, out / "masks.pt")
    pair_rows = {(r["image"], r["target"]): r for r in rows if "pointing_hit" in r}
    quality = summarize_quality(
        [r["iou"] for r in pair_rows.values()], [r["pointing_hit"] for r in pair_rows.values()]
    )
    atomic_write_text(
        json.dumps({"results": rows, "skipped": skipped, "quality": quality}, indent=2),
        out / "summary.json",
    )
