"""``lightning-extremal analyze area-curve``: each (image, target) pair's normalised score over
a grid of areas (preserve and delete games), its sufficient and necessary areas, a figure per
pair, one across the run, the table as CSV / JSON and in W&B."""

from __future__ import annotations

import math
from typing import Any

from ...api.analyses import AreaCurve, area_curve
from ...config import AnalysisConfig, RunConfig
from ...naming import class_name, pair_names, safe_name
from ..run.chunks import Job
from .figures import save_area_curve_summary, save_pair_curve
from .job import AnalysisOutput, analysis_chunks, explain_options, run_analysis

#: The analysis' name on the command line and in its folder's ``analysis.json``.
NAME = "area-curve"


def run_area_curve_job(cfg: RunConfig, analysis: AnalysisConfig, overwrite: bool = False):
    """Run ``analyze area-curve`` with ``cfg`` (model, data, method, trainer, logger) and
    ``analysis``; the output folder."""
    return run_analysis(NAME, cfg, analysis, compute_area_curves, overwrite)


def analysis_score(analysis: AnalysisConfig, default: str) -> str:
    return analysis.score if analysis.score is not None else default


def compute_area_curves(job: Job, analysis: AnalysisConfig) -> AnalysisOutput:
    """Every chunk's area curves (one batched fit per game over all areas), the per-pair
    figures, the summary figure and the tables."""
    score = analysis_score(analysis, "prob")
    pairs: list[dict[str, Any]] = []
    for index, batch, targets in analysis_chunks(job):
        curve = curves_of_chunk(job, analysis, batch, targets, score)
        ids = [job.images.ids[index[n]] for n in curve.image_index.tolist()]
        pairs += pair_records(job, curve, ids, batch)
    summary = area_curve_summary(pairs, analysis)
    save_area_curve_summary(job.out / "area_curve.png", pairs, analysis, score)
    rows = curve_rows(pairs, analysis.areas)
    document = {
        "score": score,
        "areas": list(analysis.areas),
        "preserve_fraction": analysis.preserve_fraction,
        "delete_fraction": analysis.delete_fraction,
        "interpolate": analysis.interpolate,
        "pairs": [
            {k: v for k, v in p.items() if k not in ("image_tensor", "masks")} for p in pairs
        ],
    }
    tables = {"area_curve.csv": rows}
    verdict = area_curve_verdict(summary, analysis, score)
    return AnalysisOutput(
        "area_curve", document, summary, tables, {"area_curve/table": rows}, verdict
    )


def curves_of_chunk(job: Job, analysis: AnalysisConfig, batch, targets, score: str) -> AreaCurve:
    return area_curve(
        job.loaded.model,
        batch,
        targets,
        analysis.areas,
        score=score,
        games=list(analysis.games),
        preserve_fraction=analysis.preserve_fraction,
        delete_fraction=analysis.delete_fraction,
        interpolate=analysis.interpolate,
        **explain_options(job.cfg),
    )


def pair_records(job: Job, curve: AreaCurve, ids: list[str], batch) -> list[dict[str, Any]]:
    """One record per pair of a chunk (and its figure, ``curves/<pair>.png``)."""
    names = pair_names(ids, curve.targets.tolist())
    records = []
    for p, (image_id, name) in enumerate(zip(ids, names, strict=True)):
        target = int(curve.targets[p])
        record = {
            "image": image_id,
            "pair": name,
            "target": target,
            "target_name": class_name(job.loaded.classes, target),
            "full_score": float(curve.full_scores[p]),
            **{game: c[p].tolist() for game, c in curve.curves.items()},
            **{f"{g}_achieved_area": a[p].tolist() for g, a in curve.achieved_areas.items()},
            "sufficient_area": _area(curve.sufficient_area, p),
            "necessary_area": _area(curve.necessary_area, p),
            "figure": f"curves/{safe_name(name)}.png",
        }
        image = batch[int(curve.image_index[p])]
        masks = curve.masks.get("preserve", curve.masks.get("delete"))[p]
        save_pair_curve(job.out / record["figure"], record, image, masks, curve)
        records.append(record)
    return records


def _area(areas, p: int) -> float | None:
    return None if areas is None else float(areas[p])


def curve_rows(pairs: list[dict[str, Any]], areas: list[float]) -> list[dict[str, Any]]:
    """The table: one row per pair and area (the CSV file and the W&B table)."""
    rows = []
    for pair in pairs:
        for k, area in enumerate(areas):
            rows.append(
                {
                    "image": pair["image"],
                    "target": pair["target"],
                    "target_name": pair["target_name"],
                    "area": float(area),
                    "preserve": _at(pair.get("preserve"), k),
                    "delete": _at(pair.get("delete"), k),
                    "full_score": pair["full_score"],
                    "sufficient_area": _number(pair["sufficient_area"]),
                    "necessary_area": _number(pair["necessary_area"]),
                }
            )
    return rows


def _at(values, k: int) -> float:
    return float("nan") if values is None else float(values[k])


def _number(value: float | None) -> float:
    return float("nan") if value is None else value


def area_curve_summary(pairs: list[dict[str, Any]], analysis: AnalysisConfig) -> dict[str, float]:
    """Across pairs: how many reach the level within the grid and the median (and quartiles)
    of the sufficient and necessary areas, counting a pair that never does as +inf."""
    summary: dict[str, float] = {"area_curve/pairs": float(len(pairs))}
    for key, game in (("sufficient_area", "preserve"), ("necessary_area", "delete")):
        if game not in analysis.games:
            continue
        values = [p[key] for p in pairs if p[key] is not None and not math.isnan(p[key])]
        reached = [v for v in values if math.isfinite(v)]
        summary[f"area_curve/{key}/reached"] = float(len(reached))
        if values:
            q1, median, q3 = _quartiles(values)
            summary.update(
                {
                    f"area_curve/{key}/median": median,
                    f"area_curve/{key}/q1": q1,
                    f"area_curve/{key}/q3": q3,
                }
            )
    return summary


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    """Lower quartile, median and upper quartile (linear between order statistics; inf where
    an upper one is inf: a pair that never reaches the level counts as larger than all)."""
    ordered = sorted(values)
    return tuple(_quantile(ordered, q) for q in (0.25, 0.5, 0.75))  # type: ignore[return-value]


def _quantile(ordered: list[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    lo, hi = math.floor(position), math.ceil(position)
    a, b = ordered[lo], ordered[hi]
    if lo == hi or a == b:
        return a
    if math.isinf(b):
        return b
    return a + (b - a) * (position - lo)


def area_curve_verdict(
    summary: dict[str, float], analysis: AnalysisConfig, score: str
) -> list[str]:
    """The lines printed at the end: per game how many pairs reach the level, and the
    median (quartiles) of their areas."""
    pairs = int(summary["area_curve/pairs"])
    lines = []
    for key, game, level, how in (
        ("sufficient_area", "preserve", analysis.preserve_fraction, "keeping"),
        ("necessary_area", "delete", analysis.delete_fraction, "deleting"),
    ):
        if game not in analysis.games:
            continue
        reached = int(summary[f"area_curve/{key}/reached"])
        text = f"{key} ({how} it gives {'≥' if game == 'preserve' else '≤'} {level:g} × the full {score}): "
        text += f"reached by {reached}/{pairs} pairs"
        if f"area_curve/{key}/median" in summary:
            q1, med, q3 = (summary[f"area_curve/{key}/{q}"] for q in ("q1", "median", "q3"))
            text += f"; median {med:.3g} (quartiles {q1:.3g}–{q3:.3g}; inf: not reached)"
        lines.append(text)
    return lines
