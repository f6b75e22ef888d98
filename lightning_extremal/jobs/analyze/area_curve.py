"""``lightning-extremal analyze area-curve``: each (image, target) pair's normalised score over
a grid of areas (preserve and delete games), its sufficient and necessary areas, a figure per
pair, one across the run, the table as CSV / JSON and in W&B."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from ...api.analyses import (
    MONOTONE_TOLERANCE,
    AreaCurve,
    area_bound,
    area_curve,
    non_monotone_areas,
)
from ...config import AnalysisConfig, RunConfig
from ...evaluation.cost import calibrate_masks, estimate_line, mask_seconds
from ...naming import bounded_text, class_name, pair_names, safe_name
from ..run.chunks import Job
from .figures import save_area_curve_summary, save_pair_curve
from .job import (
    AnalysisOutput,
    analysis_chunk_count,
    analysis_chunks,
    explain_options,
    first_pair,
    run_analysis,
)

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
    chunks = analysis_chunk_count(job)
    for number, (index, batch, targets) in enumerate(analysis_chunks(job), 1):
        if number == 1:
            print(area_curve_estimate(job, analysis, batch, targets), flush=True)

        def say(line: str, number: int = number) -> None:
            print(f"area curve: chunk {number}/{chunks}, {line}", flush=True)

        curve = curves_of_chunk(job, analysis, batch, targets, score, say)
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
        "monotone_tolerance": MONOTONE_TOLERANCE,
        "bounds": summary_bounds(summary, analysis.areas),
        "pairs": [
            {k: v for k, v in p.items() if k not in ("image_tensor", "masks")} for p in pairs
        ],
    }
    tables = {"area_curve.csv": rows}
    verdict = area_curve_verdict(summary, analysis, score, pairs)
    return AnalysisOutput(
        "area_curve", document, summary, tables, {"area_curve/table": rows}, verdict
    )


def area_curve_estimate(job: Job, analysis: AnalysisConfig, batch, targets) -> str:
    """The line printed before the fits: the steps of one pair's masks timed on the first
    image (:func:`~...evaluation.cost.calibrate_masks`) times every game's masks × steps and
    one shared warm start; pairs of the other chunks counted as the first chunk's per image."""
    return masks_estimate(job, analysis.areas, len(analysis.games), batch, targets)


def masks_estimate(
    job: Job, areas: list[float], games: int, batch, targets, also: tuple[float, str] = (0.0, "")
) -> str:
    """The estimate line of ``games`` games over ``areas`` for every pair of the job (one
    shared warm start), plus ``also``: seconds measured otherwise and the work they count."""
    model = job.loaded.model
    method = replace(job.cfg.method, areas=list(areas), variant="preserve")
    image, target, pairs_per_image = first_pair(model, batch, targets)
    cost = calibrate_masks(model, image, target, method)
    masks = round(len(job.images.ids) * pairs_per_image) * len(areas)
    steps = method.max_iter
    seconds = mask_seconds(cost, masks, games * steps) + also[0]
    warm = f" + one warm start of {cost.warm_steps} steps" if cost.warm_steps else ""
    work = f"{games} game(s) × {masks} masks × {steps} steps{warm}"
    work += f" + {also[1]}" if also[1] else ""
    return estimate_line(seconds, work, f"`max_iter=…` (now {steps}) / fewer images or areas=")


def curves_of_chunk(
    job: Job, analysis: AnalysisConfig, batch, targets, score: str, say=None
) -> AreaCurve:
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
        say=say,
        **explain_options(job.cfg),
    )


def pair_records(job: Job, curve: AreaCurve, ids: list[str], batch) -> list[dict[str, Any]]:
    """One record per pair of a chunk (and its figure, ``curves/<pair>.png``)."""
    names = pair_names(ids, curve.targets.tolist())
    areas = curve.areas.tolist()
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
        record["sufficient_bound"] = area_bound(record["sufficient_area"], areas)
        record["necessary_bound"] = area_bound(record["necessary_area"], areas)
        for game, values in curve.curves.items():
            rising = game == "preserve"
            record[f"{game}_non_monotone"] = non_monotone_areas(areas, values[p].tolist(), rising)
        for game, converged in curve.converged.items():
            record[f"{game}_converged"] = converged[p].tolist()
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
                    "sufficient_bound": pair.get("sufficient_bound") or "",
                    "necessary_bound": pair.get("necessary_bound") or "",
                    "preserve_converged": _at(pair.get("preserve_converged"), k),
                    "delete_converged": _at(pair.get("delete_converged"), k),
                }
            )
    return rows


def _at(values, k: int) -> float:
    return float("nan") if values is None else float(values[k])


def _number(value: float | None) -> float:
    return float("nan") if value is None else value


def area_curve_summary(pairs: list[dict[str, Any]], analysis: AnalysisConfig) -> dict[str, float]:
    """Across pairs: how many reach the level within the grid (``…/at_floor``: already at its
    smallest area, so the area is only a bound) and the median (and quartiles) of the
    sufficient and necessary areas, counting a pair that never does as +inf; per game how
    many pairs' curves are not monotone and how many masks did not converge."""
    summary: dict[str, float] = {"area_curve/pairs": float(len(pairs))}
    for game in analysis.games:
        flagged = [p for p in pairs if p.get(f"{game}_non_monotone")]
        summary[f"area_curve/{game}/non_monotone"] = float(len(flagged))
        converged = [c for p in pairs for c in p.get(f"{game}_converged") or []]
        summary[f"area_curve/{game}/masks"] = float(len(converged))
        summary[f"area_curve/{game}/unconverged"] = float(converged.count(False))
    for key, game in (("sufficient_area", "preserve"), ("necessary_area", "delete")):
        if game not in analysis.games:
            continue
        values = [p[key] for p in pairs if p[key] is not None and not math.isnan(p[key])]
        reached = [v for v in values if math.isfinite(v)]
        summary[f"area_curve/{key}/reached"] = float(len(reached))
        floor = [v for v in reached if area_bound(v, analysis.areas) == "upper"]
        summary[f"area_curve/{key}/at_floor"] = float(len(floor))
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


def summary_bounds(summary: dict[str, float], areas: list[float]) -> dict[str, dict]:
    """Which of the summary's medians and quartiles are bounds (:func:`area_bound`):
    ``{"sufficient_area": {"median": "upper", "q1": "upper", "q3": None}, …}``."""
    bounds: dict[str, dict] = {}
    for key in ("sufficient_area", "necessary_area"):
        stats = {q: summary.get(f"area_curve/{key}/{q}") for q in ("q1", "median", "q3")}
        if any(v is not None for v in stats.values()):
            bounds[key] = {q: area_bound(v, areas) for q, v in stats.items()}
    return bounds


def area_curve_verdict(
    summary: dict[str, float],
    analysis: AnalysisConfig,
    score: str,
    pairs_records: list[dict[str, Any]] | None = None,
) -> list[str]:
    """The lines printed at the end: per game how many pairs reach the level, the median
    (quartiles) of their areas (``≤ a₀``: at the grid's smallest area, a bound), how many of
    its masks did not converge, and which curves are not monotone (more steps would help)."""
    pairs = int(summary["area_curve/pairs"])
    areas = analysis.areas
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
        floor = int(summary.get(f"area_curve/{key}/at_floor", 0))
        if floor:
            text += f" ({floor} already at the grid's smallest area {areas[0]:g}: ≤ it)"
        if f"area_curve/{key}/median" in summary:
            q1, med, q3 = (
                bounded_text(v, area_bound(v, areas), areas)
                for v in (summary[f"area_curve/{key}/{q}"] for q in ("q1", "median", "q3"))
            )
            text += f"; median {med} (quartiles {q1} – {q3})"
        unconverged = int(summary.get(f"area_curve/{game}/unconverged", 0))
        if unconverged:
            masks = int(summary[f"area_curve/{game}/masks"])
            text += f"; {unconverged}/{masks} {game} masks unconverged"
        lines.append(text)
    lines += monotone_notes(pairs_records or [], analysis.games)
    return lines


def monotone_notes(pairs: list[dict[str, Any]], games, shown: int = 3) -> list[str]:
    """One line per game whose curves are not monotone for some pairs: the first ``shown``
    pairs with their areas, how many more, and that more steps would help."""
    lines = []
    for game in games:
        flagged = [p for p in pairs if p.get(f"{game}_non_monotone")]
        if not flagged:
            continue
        named = "; ".join(
            f"{p['pair']} at areas {', '.join(f'{a:g}' for a in p[f'{game}_non_monotone'])}"
            for p in flagged[:shown]
        )
        more = f" (and {len(flagged) - shown} more pairs)" if len(flagged) > shown else ""
        lines.append(
            f"{game} curve not monotone (beyond {MONOTONE_TOLERANCE:g}) for {len(flagged)}/"
            f"{len(pairs)} pairs: {named}{more}; more steps (method.max_iter) would help"
        )
    return lines
