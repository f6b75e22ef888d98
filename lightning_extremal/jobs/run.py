"""The main job: explain a set of images with a model and write masks, overlays and a summary.

Logging never costs results: loggers are fail-soft (:class:`~.loggers.FailSoftLogger`), the
observing callbacks disable themselves on a logging error, a logger that cannot be created
means a run without one, and a chunk whose fit still fails with a logger attached is run
again without it. Each case is a warning; masks.pt and summary.json are always written.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..config import RunConfig, validate_logger, validate_method, validate_run_options
from ..data.ground_truth import load_ground_truth, pair_truth
from ..data.models import load_model
from ..data.sources import open_source
from ..ops.quality import mask_quality, summarize_quality
from ..viz import save_overlay_figure
from .batches import chunk_indices, output_dir, pair_names, targets_for
from .fitting import ChunkFit
from .layer_run import run_layer_job
from .store import atomic_save, atomic_write_text, chunk_key, finished_chunk, manifest_entry

#: masks.pt (all masks in one file) is written when a run has at most this many pairs;
#: larger runs keep their masks in the per-chunk files listed in manifest.json.
MERGE_LIMIT = 4096


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
        return run_layer_job(cfg, loaded, images, out)
    job = out.name
    group = cfg.logger.group or job
    wandb_dirs: list[str] = []
    manifest: list[dict[str, Any]] = []
    for number, index in enumerate(chunk_indices(images, cfg.data.batch_size)):
        path = out / "chunks" / f"chunk-{number:05d}.pt"
        key = chunk_key(cfg, [images.ids[i] for i in index])
        done = finished_chunk(path, key)
        if done is not None:
            manifest.append(done)
            continue
        loaded_images = [(i, images.load(i)) for i in index]
        index = [i for i, image in loaded_images if image is not None]
        if not index:
            continue
        batch = torch.stack([image for _, image in loaded_images if image is not None])
        ids = [images.ids[i] for i in index]
        targets = targets_for(cfg.data.targets, images, loaded.model, index, batch)
        truths = (
            [folder_truths[i] for i in index] if folder_truths else [images.truth(i) for i in index]
        )
        chunk_truths = [
            pair_truth(truths[n], images.labels[i] if images.labels else None, t)
            for n, (i, ts) in enumerate(zip(index, targets, strict=True))
            for t in ts
        ]
        run = ChunkFit(
            cfg, out, f"{job}-chunk{number}", group, pair_names(ids, targets), loaded.classes
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
        manifest.append(manifest_entry(path, record))
        atomic_write_text(json.dumps({"chunks": manifest}, indent=1), out / "manifest.json")
        del record, result, batch
    atomic_write_text(json.dumps({"chunks": manifest}, indent=1), out / "manifest.json")
    _write_outputs(out, manifest, loaded.classes, images.skipped)
    for run_dir in wandb_dirs:
        print(f"W&B offline run: {run_dir}  (upload later: wandb sync {run_dir})")
    print(f"lightning-extremal: results in {out.resolve()}", flush=True)
    return out


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


def _write_overlays(out: Path, record: dict[str, Any], classes) -> None:
    """One overlay PNG per (image, target) pair of a finished chunk."""
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
