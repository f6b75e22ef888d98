"""``lightning-extremal analyze objects``: on images with ground-truth objects, the score of
each object alone, each pair and all of them against the sum of the parts ("multiple objects
contribute cumulatively"), and the share of each object the sufficient-area mask covers
("large objects are recognised by their details")."""

from __future__ import annotations

import statistics
from typing import Any

from ...api.analyses import area_curve, object_contributions, object_coverage
from ...config import AnalysisConfig, RunConfig
from ...errors import UsageError
from ...naming import class_name
from ..run.chunks import Job
from .area_curve import analysis_score, masks_estimate
from .figures import save_objects_figure
from .job import (
    AnalysisOutput,
    analysis_chunk_count,
    analysis_chunks,
    explain_options,
    run_analysis,
)

#: The analysis' name on the command line and in its folder's ``analysis.json``.
NAME = "objects"


def run_objects_job(cfg: RunConfig, analysis: AnalysisConfig, overwrite: bool = False):
    """Run ``analyze objects`` with ``cfg`` and ``analysis``; the output folder."""
    return run_analysis(NAME, cfg, analysis, compute_objects, overwrite)


def check_ground_truth(job: Job) -> None:
    """Refuse data without ground-truth objects, before any work."""
    if job.images.truths is None and job.folder_truths is None:
        raise UsageError(
            f"analyze objects needs images with ground-truth objects; data.source="
            f"{job.cfg.data.source!r} has none (allowed: demo, synthetic, photos, voc07, coco14, or "
            "data.ground_truth=FOLDER of <image id>.png masks)"
        )


def compute_objects(job: Job, analysis: AnalysisConfig) -> AnalysisOutput:
    """Every chunk's object contributions and coverage; the figure and the tables."""
    check_ground_truth(job)
    rows: list[dict[str, Any]] = []
    coverage: list[dict[str, Any]] = []
    chunks = analysis_chunk_count(job)
    for number, (index, batch, targets) in enumerate(analysis_chunks(job), 1):
        if number == 1:
            print(masks_estimate(job, analysis.areas, 1, batch, targets), flush=True)
        print(f"objects: chunk {number}/{chunks}: {len(index)} images…", flush=True)
        objects = [_objects(job, i, batch.shape[-2:]) for i in index]
        labels = [_labels(job, i, len(o)) for i, o in zip(index, objects, strict=True)]
        ids = [job.images.ids[i] for i in index]
        rows += contribution_rows(job, analysis, batch, targets, objects, labels, ids)
        coverage += coverage_rows(job, analysis, batch, targets, objects, labels, ids)
    score = analysis_score(analysis, "reward")
    save_objects_figure(job.out / "objects.png", rows, coverage, score)
    summary = objects_summary(rows, coverage)
    document = {"score": score, "coverage_score": analysis_score(analysis, "prob")}
    document.update(contributions=rows, coverage=coverage)
    tables = {"objects.csv": rows, "objects_coverage.csv": coverage}
    wandb = {"objects/table": rows, "objects/coverage": coverage}
    return AnalysisOutput("objects", document, summary, tables, wandb, objects_verdict(summary))


def _objects(job: Job, i: int, size) -> list:
    truths = job.folder_truths[i] if job.folder_truths else job.images.truth(i)
    return [m for m in (truths or []) if tuple(m.shape) == tuple(size)]


def _labels(job: Job, i: int, count: int) -> list[int | None]:
    """Each object's class where the source's labels name them one to one, else None."""
    labels = job.images.labels[i] if job.images.labels else None
    if labels is None or len(labels) != count:
        return [None] * count
    return list(labels)


def _name(job: Job, label: int | None) -> str:
    return "?" if label is None else class_name(job.loaded.classes, label)


def contribution_rows(job, analysis, batch, targets, objects, labels, ids) -> list[dict]:
    """One row per (image, target) pair and object subset (:func:`object_contributions`)."""
    keep = [n for n, o in enumerate(objects) if o]
    if not keep:
        return []
    options = explain_options(job.cfg)
    result = object_contributions(
        job.loaded.model,
        batch[keep],
        [objects[n] for n in keep],
        [targets[n] for n in keep],
        score=analysis_score(analysis, "reward"),
        reward=options.pop("reward"),
        max_objects=analysis.max_objects,
        **options,
    )
    rows = []
    for r in result.rows:
        n, target = keep[r["image"]], r["target"]
        names = [_name(job, labels[n][i]) for i in r["objects"]]
        rows.append(
            {
                "image": ids[n],
                "target": target,
                "target_name": class_name(job.loaded.classes, target),
                "kind": r["kind"],
                "objects": "+".join(str(i) for i in r["objects"]),
                "object_names": "+".join(names),
                "target_objects": sum(labels[n][i] == target for i in r["objects"]),
                "score": r["score"],
                "normalised": r["normalised"],
                "gain": r["gain"],
                "sum_of_parts": r["sum_of_parts"],
                "ratio": r["ratio"],
                "full_score": float(result.full_scores[r["pair"]]),
                "blurred_score": float(result.blurred_scores[r["pair"]]),
            }
        )
    return rows


def coverage_rows(job, analysis, batch, targets, objects, labels, ids) -> list[dict]:
    """One row per (image, target) pair and object: its size and the share of it covered by
    the pair's sufficient-area preserve mask (one batched fit over ``analysis.areas``)."""
    keep = [n for n, o in enumerate(objects) if o]
    if not keep:
        return []
    curve = area_curve(
        job.loaded.model,
        batch[keep],
        [targets[n] for n in keep],
        analysis.areas,
        score=analysis_score(analysis, "prob"),
        games=["preserve"],
        preserve_fraction=analysis.preserve_fraction,
        interpolate=analysis.interpolate,
        **explain_options(job.cfg),
    )
    covered = object_coverage(curve, [objects[n] for n in keep])
    rows = []
    for p, n in enumerate(curve.image_index.tolist()):
        image, target = keep[n], int(curve.targets[p])
        for i, share in enumerate(covered[p]):
            rows.append(
                {
                    "image": ids[image],
                    "target": target,
                    "target_name": class_name(job.loaded.classes, target),
                    "object": i,
                    "object_name": _name(job, labels[image][i]),
                    "is_target": labels[image][i] == target,
                    "object_area": float(objects[image][i].float().mean()),
                    "coverage": share,
                    "sufficient_area": float(curve.sufficient_area[p]),
                }
            )
    return rows


def objects_summary(rows: list[dict], coverage: list[dict]) -> dict[str, float]:
    """Medians of the ratio gain / sum of parts per kind, mean gains, and the median coverage
    of the target's objects, below and above their median size."""
    summary: dict[str, float] = {}
    for kind in ("pair", "all"):
        chosen = [r for r in rows if r["kind"] == kind and r["ratio"] == r["ratio"]]
        if chosen:
            summary[f"objects/{kind}/count"] = float(len(chosen))
            summary[f"objects/{kind}/median_ratio"] = statistics.median(r["ratio"] for r in chosen)
            summary[f"objects/{kind}/mean_gain"] = statistics.fmean(r["gain"] for r in chosen)
            summary[f"objects/{kind}/mean_sum_of_parts"] = statistics.fmean(
                r["sum_of_parts"] for r in chosen
            )
    covered = [c for c in coverage if c["is_target"] and c["coverage"] is not None]
    if covered:
        middle = statistics.median(c["object_area"] for c in covered)
        small = [c["coverage"] for c in covered if c["object_area"] <= middle]
        large = [c["coverage"] for c in covered if c["object_area"] > middle]
        summary["objects/coverage/median"] = statistics.median(c["coverage"] for c in covered)
        summary["objects/coverage/small_median"] = statistics.median(small)
        if large:
            summary["objects/coverage/large_median"] = statistics.median(large)
    return summary


def objects_verdict(summary: dict[str, float]) -> list[str]:
    """The lines printed at the end."""
    lines = []
    for kind in ("pair", "all"):
        if f"objects/{kind}/count" in summary:
            lines.append(
                f"{kind} of objects ({int(summary[f'objects/{kind}/count'])}): gain / sum of the "
                f"parts' gains, median {summary[f'objects/{kind}/median_ratio']:.3g} (1: "
                f"cumulative); mean gain {summary[f'objects/{kind}/mean_gain']:.3g} vs sum of "
                f"parts {summary[f'objects/{kind}/mean_sum_of_parts']:.3g}"
            )
    if "objects/coverage/median" in summary:
        text = f"target's object covered by the a* mask: median {summary['objects/coverage/median']:.3g}"
        if "objects/coverage/large_median" in summary:
            text += (
                f" (smaller half {summary['objects/coverage/small_median']:.3g}, larger half "
                f"{summary['objects/coverage/large_median']:.3g})"
            )
        lines.append(text)
    return lines or ["no image with 2 or more objects"]
