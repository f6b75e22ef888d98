"""`lightning-extremal run` for input masks: explain each chunk of images, then write its
masks, summary rows and overlays through the results store."""

from __future__ import annotations

from typing import Any

import torch

from ...api import ExtremalResult
from ...data.ground_truth import pair_truth
from ...naming import class_name, pair_names
from ...ops.pointing import mask_quality, summarize_quality
from ...viz import save_overlay_figure
from .chunks import Job, load_batch, own_share, run_chunks, targets_for
from .fitting import ChunkFit, job_logging
from .verdict import convergence_summary


def run_image_job(job: Job) -> None:
    """Explain every pending chunk, one Lightning fit each, all logged to the job's one
    logger; each finished chunk goes to the store (chunk file, manifest) with its overlays
    the moment it is done."""
    with job_logging(job):  # one logger (W&B run) for the whole job
        run_chunks(job, lambda number, index: explained_with_overlays(job, number, index))
        if job.writes:
            write_summary(job)


def explained_with_overlays(job: Job, number: int, index: list[int]) -> dict[str, Any] | None:
    record = explain_chunk(job, number, index)
    if record is not None:
        write_overlays(job, record)
    return record


def explain_chunk(job: Job, number: int, index: list[int]) -> dict[str, Any] | None:
    """Optimise the masks of one chunk and score them against its ground truth; its record
    (masks, statistics, history, scores, summary rows), or None when no image was readable
    or this process does not write (another rank of a multi-process job: it decoded and
    perturbed only its own block of the chunk)."""
    share = own_share(job, index)
    readable = load_batch(job.images, share)
    if readable is None and not job.sharded:
        return None
    own, batch = readable or ([], empty_batch(job, index))
    ids = [job.images.ids[i] for i in own]
    targets = targets_for(job.cfg.data.targets, job.images, job.loaded.model, own, batch)
    fit = ChunkFit.for_chunk(job, number, ids, targets, pair_truths(job, own, targets))
    result = fit.explain(job.loaded.model, batch, targets, ids)
    if not job.writes:
        return None
    if job.sharded:  # the writer's record holds every rank's images
        own, batch = load_batch(job.images, index)
        ids = [job.images.ids[i] for i in own]
    truths = pair_truths(job, own, targets_by_image(result, len(own)))
    quality = mask_quality(result.masks, job.cfg.method.areas, truths)
    pair_ids = [ids[i] for i in result.image_index.tolist()]
    rows = summary_rows(job, result, quality, fit.steps, pair_ids)
    fit.log_results(rows, summarize_quality(quality["iou"], quality["pointing_hit"]))
    return {
        "ids": pair_ids,
        "images": batch[result.image_index],
        "targets": result.targets,
        "areas": result.areas,
        "masks": result.masks,
        "rewards": result.rewards,
        "achieved_areas": result.achieved_areas,
        "converged": result.converged,
        "history": result.history,
        "steps": fit.steps,
        "iou": quality["iou"],
        "pointing_hit": quality["pointing_hit"],
        "rows": rows,
    }


def empty_batch(job: Job, index: list[int]) -> torch.Tensor:
    """A batch of no images of the chunk's shape (a rank whose block is empty or unreadable
    still takes part in the chunk's fit)."""
    return torch.zeros(0, *job.images.shapes[index[0]])


def targets_by_image(result: ExtremalResult, num_images: int) -> list[list[int]]:
    """Per image of the chunk, the classes its pairs explain."""
    per_image: list[list[int]] = [[] for _ in range(num_images)]
    for image, target in zip(result.image_index.tolist(), result.targets.tolist(), strict=True):
        per_image[image].append(target)
    return per_image


def pair_truths(job: Job, index: list[int], targets: list[list[int]]) -> list:
    """The ground truth of each (image, target) pair of a chunk (None where there is none)."""
    images = job.images
    truths = [job.folder_truths[i] for i in index] if job.folder_truths else None
    return [
        pair_truth(
            truths[n] if truths else images.truth(i),
            images.labels[i] if images.labels else None,
            t,
        )
        for n, (i, ts) in enumerate(zip(index, targets, strict=True))
        for t in ts
    ]


def summary_rows(job: Job, result: ExtremalResult, quality, steps, pair_ids) -> list[dict]:
    """One summary row per (image, target) pair and area."""
    rows = []
    for p, image_id in enumerate(pair_ids):
        target = int(result.targets[p])
        for k, area in enumerate(job.cfg.method.areas):
            row = {
                "image": image_id,
                "target": target,
                "target_name": class_name(job.loaded.classes, target),
                "area": float(area),
                "reward": float(result.rewards[p, k]),
                "achieved_area": float(result.achieved_areas[p, k]),
                "converged": bool(result.converged[p, k]),
                "steps": int(steps if steps is not None else result.history["reward"].shape[-1]),
                "start": result.start,
            }
            if quality["pointing_hit"][p] is not None:
                # Pair-level scores (IoU at the largest area; pointing on the summed masks).
                row.update(iou=quality["iou"][p], pointing_hit=quality["pointing_hit"][p])
            rows.append(row)
    return rows


def write_overlays(job: Job, record: dict[str, Any]) -> None:
    """One overlay PNG per (image, target) pair of a finished chunk."""
    areas = record["areas"].tolist()
    stems = pair_names(record["ids"], record["targets"].tolist())
    for p, (image_id, stem) in enumerate(zip(record["ids"], stems, strict=True)):
        name = class_name(job.loaded.classes, int(record["targets"][p]))
        save_overlay_figure(
            job.out / "overlays" / f"{stem}.png",
            record["images"][p],
            record["masks"][p],
            areas,
            f"{image_id}: {name}",
            record["rewards"][p].tolist(),
            record["achieved_areas"][p].tolist(),
            record["converged"][p].tolist(),
        )


def write_summary(job: Job) -> None:
    """summary.json from the manifest's rows; masks.pt merged from the chunk files."""
    rows = job.result_rows()
    areas = torch.tensor(job.cfg.method.areas, dtype=torch.float64)
    job.store.write_manifest()
    job.store.merge_masks(job.input_order(), areas=areas, classes=job.loaded.classes)
    pair_rows = {(r["image"], r["target"]): r for r in rows if "pointing_hit" in r}
    quality = summarize_quality(
        [r["iou"] for r in pair_rows.values()], [r["pointing_hit"] for r in pair_rows.values()]
    )
    job.write_summary(
        {
            "results": rows,
            "skipped": job.images.skipped,
            "quality": quality,
            "convergence": convergence_summary(rows),
        }
    )
