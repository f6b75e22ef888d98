"""`lightning-extremal run method=channel|layer-spatial|invert|diff`: explain one layer of the
classifier and write its masks, top channels, inversions and diff figures."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..api import feature_inversion
from ..api.diffing import activation_diff, consecutive_pairs, top_channels
from ..config import RunConfig, validate_inversion
from ..ops.inversion import activation_match
from ..ops.layer_masks import channel_counts
from ..ops.layers import default_layer, get_layer, layer_activation
from ..viz import (
    save_channel_bars,
    save_comparison_figure,
    save_diff_figure,
    save_inversion_figure,
    save_overlay_figure,
)
from .batches import chunk_indices, pair_names, targets_for
from .fitting import ChunkFit
from .store import atomic_save, atomic_write_text, chunk_key, load_chunk

#: How many top channels per image the job prints (all of them go to summary.json).
PRINTED_CHANNELS = 10


def inversion_options(cfg: RunConfig) -> dict[str, Any]:
    """Keyword arguments of :func:`~.inversion.feature_inversion` from the config."""
    inv, t = cfg.inversion, cfg.trainer
    return {
        "max_iter": inv.invert_iter,
        "lr": inv.invert_lr,
        "tv_weight": inv.tv_weight,
        "tv_beta": inv.tv_beta,
        "norm_weight": inv.norm_weight,
        "norm_alpha": inv.norm_alpha,
        "jitter": inv.invert_jitter,
        "accelerator": t.accelerator,
        "progress": t.progress,
    }


def _class_name(classes, target: int) -> str:
    return classes[target] if classes and 0 <= target < len(classes) else str(target)


def _stems(ids: list[str]) -> list[str]:
    """File stems of pairs: the image id, plus ``_<n>`` for an image's later pairs."""
    seen: dict[str, int] = {}
    stems = []
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
        stems.append(i if seen[i] == 1 else f"{i}_{seen[i] - 1}")
    return stems


def run_layer_job(cfg: RunConfig, loaded, images, out: Path) -> Path:
    """The layer kinds of :func:`~.run.run_job` (model loaded, images opened, ``out`` made).

    ``method.layer`` None picks :func:`~.layers.default_layer`. Chunks of ``data.batch_size``
    images are explained in turn; pairs are compared (``diff``) within a chunk. Like input
    runs, each finished chunk is saved atomically to ``chunks/chunk-NNNNN.pt`` with a key of
    everything that affects it (inversion settings included), so rerunning the command after
    a crash skips the chunks already done.
    """
    validate_inversion(cfg.inversion)
    kind, model = cfg.method.kind, loaded.model
    layer = cfg.method.layer
    if layer is None:
        first = next(
            image for image in map(images.load, range(len(images.ids))) if image is not None
        )
        layer = default_layer(model, first[None])
    get_layer(model, layer)
    cfg = replace(cfg, method=replace(cfg.method, layer=layer))
    atomic_write_text(json.dumps(asdict(cfg), indent=2, default=str), out / "config.json")
    print(f"lightning-extremal: {kind} at layer {layer!r}", flush=True)
    job, group = out.name, cfg.logger.group or out.name
    rows: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for number, index in enumerate(chunk_indices(images, cfg.data.batch_size)):
        path = out / "chunks" / f"chunk-{number:05d}.pt"
        key = chunk_key(cfg, [images.ids[i] for i in index], inversion=asdict(cfg.inversion))
        done = load_chunk(path, key)
        if done is not None:
            rows += done["rows"]
            parts += [done["part"]] if done["part"] is not None else []
            continue
        loaded_images = [(i, images.load(i)) for i in index]
        index = [i for i, image in loaded_images if image is not None]
        if not index:
            continue
        batch = torch.stack([image for _, image in loaded_images if image is not None])
        ids = [images.ids[i] for i in index]
        if kind == "invert":
            chunk_rows = _invert(cfg, model, layer, batch, ids, out)
            atomic_save({"key": key, "rows": chunk_rows, "part": None}, path)
            rows += chunk_rows
            continue
        targets = targets_for(cfg.data.targets, images, model, index, batch)
        run = ChunkFit(
            cfg, out, f"{job}-chunk{number}", group, pair_names(ids, targets), loaded.classes
        )
        try:
            result = run.explain(model, batch, targets)
        finally:
            run.finish()
        pair_ids = [ids[i] for i in result.image_index.tolist()]
        part = {
            "ids": pair_ids,
            "targets": result.targets,
            "masks": result.masks,
            "rewards": result.rewards,
            "achieved_areas": result.areas,
        }
        pair_images = batch[result.image_index]
        if kind == "layer-spatial":
            chunk_rows = _spatial_outputs(cfg, result, pair_images, pair_ids, loaded.classes, out)
        else:
            chunk_rows = _channel_outputs(
                cfg, model, result, pair_images, pair_ids, loaded.classes, out
            )
        atomic_save({"key": key, "rows": chunk_rows, "part": part}, path)
        rows += chunk_rows
        parts.append(part)
    if parts:
        merged = {
            key: torch.cat([p[key] for p in parts])
            for key in ("targets", "masks", "rewards", "achieved_areas")
        }
        merged.update(
            ids=[i for p in parts for i in p["ids"]],
            areas=torch.tensor(cfg.method.areas, dtype=torch.float64),
            classes=loaded.classes,
            layer=layer,
            kind=kind,
        )
        atomic_save(merged, out / "masks.pt")
    summary = {"kind": kind, "layer": layer, "results": rows, "skipped": images.skipped}
    atomic_write_text(json.dumps(summary, indent=2), out / "summary.json")
    print(f"lightning-extremal: results in {out.resolve()}", flush=True)
    return out


def _invert(cfg: RunConfig, model, layer: str, batch, ids, out: Path) -> list[dict[str, Any]]:
    """Invert each image's full activation; inversions/<id>.png and the remaining distance."""
    targets = layer_activation(model, layer, batch)
    options = inversion_options(cfg)
    inverted = feature_inversion(
        model,
        layer,
        targets,
        size=tuple(batch.shape[-2:]),
        channels=batch.shape[1],
        seed=cfg.trainer.seed,
        **options,
    )
    device = next(iter(model.parameters()), batch).device
    reached = activation_match(layer_activation(model, layer, inverted.to(device)), targets).cpu()
    rows = []
    for n, image_id in enumerate(ids):
        save_inversion_figure(
            out / "inversions" / f"{image_id}.png",
            batch[n],
            inverted[n],
            f"{image_id}: inversion at {layer} (relative distance {float(reached[n]):.3g})",
        )
        rows.append({"image": image_id, "layer": layer, "relative_distance": float(reached[n])})
        print(f"  {image_id}: inverted, ‖Φ(x*) − Φ(x)‖²/‖Φ(x)‖² = {float(reached[n]):.3g}")
    return rows


def _channel_outputs(cfg, model, result, images, ids, classes, out: Path) -> list[dict]:
    """Top channels (printed, summary rows, bar charts) and, with inversions on, the diff
    figures (``channel``, ``diff``) and the pair comparisons (``diff``)."""
    areas = list(cfg.method.areas)
    counts = channel_counts(areas, result.masks.shape[-1])
    stems = _stems(ids)
    rows = []
    for p, image_id in enumerate(ids):
        target = int(result.targets[p])
        name = _class_name(classes, target)
        tops = [top_channels(result.masks[p, k], counts[k]) for k in range(len(areas))]
        for k, area in enumerate(areas):
            values = result.masks[p, k, tops[k]].tolist()
            rows.append(
                {
                    "image": image_id,
                    "target": target,
                    "target_name": name,
                    "layer": cfg.method.layer,
                    "area": float(area),
                    "channels_kept": counts[k],
                    "top_channels": tops[k],
                    "top_values": [round(v, 4) for v in values],
                    "reward": float(result.rewards[p, k]),
                    "achieved_area": float(result.areas[p, k]),
                }
            )
            shown = ", ".join(str(c) for c in tops[k][:PRINTED_CHANNELS])
            more = ", …" if counts[k] > PRINTED_CHANNELS else ""
            print(f"  {image_id} ({name}) area {area:g}: top channels {shown}{more}")
        save_channel_bars(
            out / "channels" / f"{stems[p]}.png",
            result.masks[p],
            areas,
            tops,
            f"{image_id}: {name} · channels of {cfg.method.layer}",
        )
    if cfg.inversion.invert_iter == 0:
        return rows
    pairs = consecutive_pairs(len(ids)) if cfg.method.kind == "diff" else []
    diff = activation_diff(
        model,
        cfg.method.layer,
        images,
        result.targets.tolist(),
        area=areas[0],
        pairs=pairs,
        channel_masks=result.masks[:, 0],
        baseline=cfg.method.channel_baseline,
        seed=cfg.trainer.seed,
        progress=cfg.trainer.progress,
        inversion=inversion_options(cfg),
    )
    for p, image_id in enumerate(ids):
        save_diff_figure(
            out / "diff" / f"{stems[p]}.png",
            images[p],
            diff.full[p],
            diff.attributed[p],
            diff.top_channels[p],
            f"{image_id}: {_class_name(classes, int(result.targets[p]))} · {cfg.method.layer}, "
            f"area {areas[0]:g}",
        )
    for c in diff.comparisons:
        names = (stems[c.first], stems[c.second])
        save_comparison_figure(
            out / "comparisons" / f"{names[0]}_vs_{names[1]}.png",
            images[c.first],
            images[c.second],
            c,
            names,
        )
        rows.append(
            {
                "compare": list(names),
                "area": float(areas[0]),
                "shared": c.shared,
                "only_first": c.only_first,
                "only_second": c.only_second,
            }
        )
        print(
            f"  {names[0]} vs {names[1]}: {len(c.shared)} shared, "
            f"{len(c.only_first)}/{len(c.only_second)} differing channels"
        )
    return rows


def _spatial_outputs(cfg, result, images, ids, classes, out: Path) -> list[dict]:
    """Summary rows and overlays of the layer-grid masks, upsampled to the image."""
    areas = list(cfg.method.areas)
    stems = _stems(ids)
    rows = []
    for p, image_id in enumerate(ids):
        target = int(result.targets[p])
        name = _class_name(classes, target)
        masks = result.masks[p]  # K×H_L×W_L
        upsampled = F.interpolate(masks[:, None], size=images.shape[-2:], mode="bilinear")
        save_overlay_figure(
            out / "overlays" / f"{stems[p]}.png",
            images[p],
            upsampled[:, 0].clamp(0, 1),
            areas,
            f"{image_id}: {name} · grid of {cfg.method.layer}",
            result.rewards[p].tolist(),
        )
        for k, area in enumerate(areas):
            rows.append(
                {
                    "image": image_id,
                    "target": target,
                    "target_name": name,
                    "layer": cfg.method.layer,
                    "grid": list(masks.shape[-2:]),
                    "area": float(area),
                    "reward": float(result.rewards[p, k]),
                    "achieved_area": float(result.areas[p, k]),
                }
            )
    return rows
