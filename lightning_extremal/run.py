"""The main job: explain a set of images with a model and write masks, overlays and a summary."""

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

from .api import extremal_perturbation, predicted_classes
from .config import RunConfig, validate_method
from .images import ImageSet, load_images
from .loggers import finish_logger, make_logger
from .models import load_model


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


def _targets_for(cfg_targets: Any, images: ImageSet, model, index: list[int]) -> list[list[int]]:
    """Per image, the classes to explain: top1, the dataset's labels, a class id or a list."""
    if cfg_targets == "top1":
        batch = torch.stack([images.images[i] for i in index])
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
        f"data.targets must be 'top1', 'labels', a class id or a list of class ids; got {cfg_targets!r}"
    )


def _chunks(images: ImageSet, batch_size: int) -> list[list[int]]:
    """Indices of images in chunks of ``batch_size``, each chunk of one image shape."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images.images):
        by_shape.setdefault(tuple(image.shape), []).append(i)
    return [
        idx[s : s + batch_size] for idx in by_shape.values() for s in range(0, len(idx), batch_size)
    ]


def _chunk_key(cfg: RunConfig, ids: list[str]) -> str:
    payload = json.dumps({"method": asdict(cfg.method), "model": asdict(cfg.model),
                          "data": asdict(cfg.data), "ids": ids}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def run_job(cfg: RunConfig) -> Path:
    """Run the configured job; every chunk's results are on disk as soon as it finishes."""
    validate_method(cfg.method)
    if not isinstance(cfg.data.batch_size, int) or cfg.data.batch_size < 1:
        raise ValueError(f"data.batch_size must be a positive integer; got {cfg.data.batch_size!r}")
    loaded = load_model(cfg.model)
    size = cfg.data.size if cfg.data.size is not None else loaded.size
    images = load_images(cfg.data.source, size, cfg.data.crop)
    out = output_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    print(f"lightning-extremal: writing results to {out.resolve()}", flush=True)
    atomic_write_text(json.dumps(asdict(cfg), indent=2, default=str), out / "config.json")
    job = out.name
    wandb_dirs: list[str] = []
    records = []
    for number, index in enumerate(_chunks(images, cfg.data.batch_size)):
        ids = [images.ids[i] for i in index]
        path = out / "chunks" / f"chunk-{number:05d}.pt"
        key = _chunk_key(cfg, ids)
        if path.exists():
            saved = torch.load(path, weights_only=False)
            if saved.get("key") == key:
                records.append(saved)
                continue
        targets = _targets_for(cfg.data.targets, images, loaded.model, index)
        batch = torch.stack([images.images[i] for i in index])
        logger = make_logger(cfg.logger, out, f"{job}-chunk{number}", job, asdict(cfg))
        try:
            result = _explain(cfg, loaded.model, batch, targets, logger)
        finally:
            run_dir = _finish(logger)
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
        }
        atomic_save(record, path)
        records.append(record)
    _write_outputs(out, records, loaded.classes, images.skipped)
    for run_dir in wandb_dirs:
        print(f"W&B offline run: {run_dir}  (upload later: wandb sync {run_dir})")
    print(f"lightning-extremal: results in {out.resolve()}", flush=True)
    return out


def _explain(cfg: RunConfig, model, batch, targets, logger):
    t = cfg.trainer
    return extremal_perturbation(
        model,
        batch,
        targets,
        cfg.method.areas,
        **{k: v for k, v in asdict(cfg.method).items() if k != "areas"},
        seed=t.seed,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        precision=t.precision,
        progress=t.progress,
        log_every_n_steps=t.log_every_n_steps,
        logger=logger,
    )


def _finish(logger) -> str | None:
    try:
        return finish_logger(logger)
    except Exception as error:  # a logging failure must not lose finished masks
        warnings.warn(f"could not close the logger: {error}", stacklevel=2)
        return None


def _write_outputs(out: Path, records: list[dict], classes, skipped) -> None:
    from .viz import save_overlay_figure

    merged = {
        "ids": [i for r in records for i in r["ids"]],
        "targets": torch.cat([r["targets"] for r in records]),
        "areas": records[0]["areas"],
        "masks": torch.cat([r["masks"] for r in records]),
        "rewards": torch.cat([r["rewards"] for r in records]),
        "achieved_areas": torch.cat([r["achieved_areas"] for r in records]),
        "classes": classes,
    }
    atomic_save(merged, out / "masks.pt")
    summary = []
    areas = merged["areas"].tolist()
    for r in records:
        for p, image_id in enumerate(r["ids"]):
            target = int(r["targets"][p])
            name = classes[target] if classes and target < len(classes) else str(target)
            stem = f"{image_id}_{target}" if r["ids"].count(image_id) > 1 else image_id
            save_overlay_figure(
                out / "overlays" / f"{stem}.png",
                r["images"][p],
                r["masks"][p],
                areas,
                f"{image_id}: {name}",
                r["rewards"][p].tolist(),
            )
            for k, area in enumerate(areas):
                summary.append({
                    "image": image_id,
                    "target": target,
                    "target_name": name,
                    "area": area,
                    "reward": float(r["rewards"][p, k]),
                    "achieved_area": float(r["achieved_areas"][p, k]),
                })
    atomic_write_text(
        json.dumps({"results": summary, "skipped": skipped}, indent=2), out / "summary.json"
    )
