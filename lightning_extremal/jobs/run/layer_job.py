"""`lightning-extremal run method=channel|layer-spatial|invert|diff`: explain one layer of the
classifier and write its masks, top channels, inversions and diff figures."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ...api.diffing import activation_diff, consecutive_pairs, top_channels
from ...api.inversion import invert
from ...callbacks.progress import progress_phase
from ...config import RunConfig, validate_inversion
from ...naming import class_name, pair_names
from ...ops.inversion import activation_match, initial_images
from ...ops.layer_layout import LayerLayout, resolve_layout
from ...ops.layer_masks import channel_counts
from ...ops.layers import default_layer, get_layer, layer_activation
from ...viz import (
    save_channel_bars,
    save_comparison_figure,
    save_diff_figure,
    save_inversion_figure,
    save_overlay_figure,
)
from .chunks import Job, load_batch, run_chunks, targets_for, write_config
from .fitting import ChunkFit, job_logging
from .verdict import convergence_summary

#: How many top channels per image the job prints (all of them go to summary.json).
PRINTED_CHANNELS = 10


def inversion_options(cfg: RunConfig) -> dict[str, Any]:
    """Keyword arguments of :func:`~lightning_extremal.api.feature_inversion` from the config, for
    :func:`~.api.diffing.activation_diff` (a keyword API)."""
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


def run_layer_job(job: Job) -> None:
    """The layer kinds of :func:`~.job.run_job`: ``channel``, ``layer-spatial``, ``invert``
    and ``diff`` at ``method.layer`` (None: :func:`~lightning_extremal.ops.layers.default_layer`).

    Chunks of ``data.batch_size`` images are explained in turn; pairs are compared (``diff``)
    within a chunk. Like input runs, each finished chunk goes to the results store with a key
    of everything that affects it (inversion settings included), so rerunning the command
    after a crash skips the chunks already done.
    """
    validate_inversion(job.cfg.inversion)
    layer = resolve_layer(job)
    layout = layer_layout(job, layer)
    shown = f" ({layout.describe()})" if layout else ""
    print(f"lightning-extremal: {job.cfg.method.kind} at layer {layer!r}{shown}", flush=True)
    with job_logging(job):  # one logger (W&B run) for the whole job
        run_chunks(
            job, lambda n, index: layer_chunk(job, n, index), inversion=asdict(job.cfg.inversion)
        )
        write_summary(job, layer, layout)


def layer_chunk(job: Job, number: int, index: list[int]) -> dict | None:
    """One chunk's record with its figures (None when none of its images could be read)."""
    readable = load_batch(job.images, index)
    if readable is None:
        return None
    index, batch = readable
    if job.cfg.method.kind == "invert":
        return invert_chunk(job, batch, [job.images.ids[i] for i in index])
    return explain_chunk(job, number, index, batch)


def _first_image(job: Job) -> torch.Tensor:
    """The first readable image of the job, 1×C×H×W."""
    images = map(job.images.load, range(len(job.images.ids)))
    return next(image for image in images if image is not None)[None]


def layer_layout(job: Job, layer: str) -> LayerLayout | None:
    """What the layer's dimensions mean (channels, grid, extra tokens), read from its output
    for the first image before any work: an ambiguous or misdeclared layout fails here.
    None for ``invert``, which matches the activation whatever its layout."""
    method = job.cfg.method
    if method.kind == "invert":
        return None
    image = _first_image(job)
    shape = layer_activation(job.loaded.model, layer, image).shape
    return resolve_layout(
        shape,
        image.shape[-2:],
        layer,
        method.layer_layout,
        method.layer_grid,
        method.layer_extra_tokens,
        job.loaded.model,
    )


def resolve_layer(job: Job) -> str:
    """``method.layer``, or the model's last spatial feature map; checked against the model,
    written back into the job's configuration (and config.json)."""
    cfg, model = job.cfg, job.loaded.model
    layer = cfg.method.layer
    if layer is None:
        layer = default_layer(model, _first_image(job))
    get_layer(model, layer)
    job.cfg = replace(cfg, method=replace(cfg.method, layer=layer))
    write_config(job.cfg, job.out)
    return layer


def explain_chunk(job: Job, number: int, index: list[int], batch: torch.Tensor) -> dict:
    """Channel or layer-grid masks of one chunk, with their figures and summary rows."""
    cfg, model = job.cfg, job.loaded.model
    ids = [job.images.ids[i] for i in index]
    targets = targets_for(cfg.data.targets, job.images, model, index, batch)
    fit = ChunkFit.for_chunk(job, number, ids, targets)
    result = fit.explain(model, batch, targets, ids)
    pair_ids = [ids[i] for i in result.image_index.tolist()]
    pair_images = batch[result.image_index]
    classes = job.loaded.classes
    if cfg.method.kind == "layer-spatial":
        rows = _spatial_outputs(cfg, result, pair_images, pair_ids, classes, job.out)
    else:
        rows = _channel_outputs(cfg, model, result, pair_images, pair_ids, classes, job.out)
    fit.log_results(rows)
    return {
        "ids": pair_ids,
        "targets": result.targets,
        "masks": result.masks,
        "rewards": result.rewards,
        "achieved_areas": result.achieved_areas,
        "converged": result.converged,
        "rows": rows,
    }


def invert_chunk(job: Job, batch: torch.Tensor, ids: list[str]) -> dict:
    """Feature inversions of one chunk's images (``method=invert``), with their figures."""
    rows = _invert(job.cfg, job.loaded.model, job.cfg.method.layer, batch, ids, job.out)
    return {"ids": ids, "rows": rows}


def write_summary(job: Job, layer: str, layout: LayerLayout | None) -> None:
    """summary.json from the manifest's rows; masks.pt merged from the chunk files."""
    kind = job.cfg.method.kind
    rows = job.result_rows()
    areas = torch.tensor(job.cfg.method.areas, dtype=torch.float64)
    job.store.write_manifest()
    job.store.merge_masks(
        job.input_order(), areas=areas, classes=job.loaded.classes, layer=layer, kind=kind
    )
    job.write_summary(
        {
            "kind": kind,
            "layer": layer,
            "layout": layout.describe() if layout else None,
            "results": rows,
            "skipped": job.images.skipped,
            "convergence": convergence_summary(rows),
        }
    )


def _invert(cfg: RunConfig, model, layer: str, batch, ids, out: Path) -> list[dict[str, Any]]:
    """Invert each image's full activation; inversions/<id>.png and the remaining distance."""
    goal = layer_activation(model, layer, batch)
    init = initial_images(tuple(batch.shape), (0.0, 1.0), cfg.trainer.seed)
    inverted = invert(model, layer, goal, init, cfg.inversion, cfg.trainer)
    device = next(iter(model.parameters()), batch).device
    reached = activation_match(layer_activation(model, layer, inverted.to(device)), goal).cpu()
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
    stems = pair_names(ids, result.targets.tolist())
    rows = []
    for p, image_id in enumerate(ids):
        rows += _top_channel_rows(cfg, result, p, image_id, classes, counts, stems[p], out)
    if cfg.inversion.invert_iter == 0:
        return rows
    diff = _channel_diff(cfg, model, result, images, ids, areas[0])
    _save_diff_figures(cfg, result, images, ids, classes, diff, stems, areas[0], out)
    rows += _comparison_rows(diff, images, stems, areas[0], out)
    return rows


def _top_channel_rows(cfg, result, p: int, image_id, classes, counts, stem, out: Path) -> list:
    """Summary rows of pair ``p``'s top channels, one per area (each also printed, its first
    :data:`PRINTED_CHANNELS` channels), and its bar chart channels/<stem>.png."""
    areas = list(cfg.method.areas)
    target = int(result.targets[p])
    name = class_name(classes, target)
    tops = [top_channels(result.masks[p, k], counts[k]) for k in range(len(areas))]
    rows = []
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
                "achieved_area": float(result.achieved_areas[p, k]),
                "converged": bool(result.converged[p, k]),
            }
        )
        shown = ", ".join(str(c) for c in tops[k][:PRINTED_CHANNELS])
        more = ", …" if counts[k] > PRINTED_CHANNELS else ""
        print(f"  {image_id} ({name}) area {area:g}: top channels {shown}{more}")
    save_channel_bars(
        out / "channels" / f"{stem}.png",
        result.masks[p],
        areas,
        tops,
        f"{image_id}: {name} · channels of {cfg.method.layer}",
    )
    return rows


def _channel_diff(cfg, model, result, images, ids, area: float):
    """:func:`~.api.diffing.activation_diff` of the pairs' images with their channel masks at
    ``area`` (the first one); consecutive pairs compared only for ``method=diff``."""
    pairs = consecutive_pairs(len(ids)) if cfg.method.kind == "diff" else []
    phase = "activation diff" if cfg.method.kind == "diff" else "attributed-channel inversions"
    with progress_phase(phase):  # its inversion's bar: "chunk k/n · activation diff: …"
        return activation_diff(
            model,
            cfg.method.layer,
            images,
            result.targets.tolist(),
            area=area,
            pairs=pairs,
            channel_masks=result.masks[:, 0],
            baseline=cfg.method.channel_baseline,
            seed=cfg.trainer.seed,
            progress=cfg.trainer.progress,
            inversion=inversion_options(cfg),
            layer_layout=cfg.method.layer_layout,
            layer_grid=cfg.method.layer_grid,
            layer_extra_tokens=cfg.method.layer_extra_tokens,
        )


def _save_diff_figures(cfg, result, images, ids, classes, diff, stems, area, out: Path) -> None:
    """diff/<stem>.png per pair: the image, its full and attributed-channel inversions at
    ``area``."""
    for p, image_id in enumerate(ids):
        save_diff_figure(
            out / "diff" / f"{stems[p]}.png",
            images[p],
            diff.full[p],
            diff.attributed[p],
            diff.top_channels[p],
            f"{image_id}: {class_name(classes, int(result.targets[p]))} · {cfg.method.layer}, "
            f"area {area:g}",
        )


def _comparison_rows(diff, images, stems, area, out: Path) -> list[dict]:
    """Per compared pair: comparisons/<first>_vs_<second>.png, a summary row of its shared
    and differing channels at ``area``, and a printed line of their counts."""
    rows = []
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
                "area": float(area),
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
    stems = pair_names(ids, result.targets.tolist())
    rows = []
    for p, image_id in enumerate(ids):
        target = int(result.targets[p])
        name = class_name(classes, target)
        masks = result.masks[p]  # K×H_L×W_L
        upsampled = F.interpolate(masks[:, None], size=images.shape[-2:], mode="bilinear")
        save_overlay_figure(
            out / "overlays" / f"{stems[p]}.png",
            images[p],
            upsampled[:, 0].clamp(0, 1),
            areas,
            f"{image_id}: {name} · grid of {cfg.method.layer}",
            result.rewards[p].tolist(),
            result.achieved_areas[p].tolist(),
            result.converged[p].tolist(),
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
                    "achieved_area": float(result.achieved_areas[p, k]),
                    "converged": bool(result.converged[p, k]),
                }
            )
    return rows
