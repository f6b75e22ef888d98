"""``lightning-extremal analyze compare``: meaningful perturbations (Fong & Vedaldi 2017, the
deleted area follows from the penalty λ₁) beside extremal perturbations (the area is asked
for) on the same images: a side-by-side figure, each mask's area and score, and how the deleted
area moves with λ₁ — the weakness extremal perturbations fix."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ...api import extremal_perturbation, meaningful
from ...config import AnalysisConfig, MeaningfulConfig, RunConfig, validate_meaningful_options
from ...evaluation.cost import method_estimate
from ...naming import class_name
from ..run.chunks import Job
from .area_curve import masks_estimate
from .figures import save_comparison_figure
from .job import (
    AnalysisOutput,
    analysis_chunk_count,
    analysis_chunks,
    explain_options,
    first_pair,
    run_analysis,
)

#: The analysis' name on the command line and in its folder's ``analysis.json``.
NAME = "compare"
#: Pairs drawn in ``compare.png`` (every pair is in the tables).
FIGURE_PAIRS = 16
#: A meaningful-perturbation mask deleting less than this fraction deletes "nothing".
NOTHING = 1e-3


def run_compare_job(cfg: RunConfig, analysis: AnalysisConfig, overwrite: bool = False):
    """Run ``analyze compare`` with ``cfg`` (model, data, extremal method, trainer, logger)
    and ``analysis`` (``compare_areas``, ``mp_options``); the output folder."""
    return run_analysis(NAME, cfg, analysis, compute_comparison, overwrite)


def compute_comparison(job: Job, analysis: AnalysisConfig) -> AnalysisOutput:
    """Both methods on every chunk, the figure of the first :data:`FIGURE_PAIRS` pairs, one
    row per pair and mask, and per setting the areas' spread."""
    mp_config = validate_meaningful_options(analysis.mp_options, "analysis.mp_options")
    rows: list[dict[str, Any]] = []
    drawn: list[dict[str, Any]] = []
    chunks = analysis_chunk_count(job)
    for number, (index, batch, targets) in enumerate(analysis_chunks(job), 1):
        if number == 1:
            print(comparison_estimate(job, analysis, mp_config, batch, targets), flush=True)
        print(f"compare: chunk {number}/{chunks}: {len(index)} images, both methods…", flush=True)
        ep, mp = both_methods(job, analysis, mp_config, batch, targets)
        ids = [job.images.ids[index[i]] for i in ep.image_index.tolist()]
        rows += comparison_rows(job, analysis, ep, mp, ids)
        for p in range(min(len(ids), FIGURE_PAIRS - len(drawn))):
            drawn.append(
                {
                    "name": f"{ids[p]}: {class_name(job.loaded.classes, int(ep.targets[p]))}",
                    "image": batch[ep.image_index[p]],
                    "ep": (ep.masks[p], ep.achieved_areas[p]),
                    "mp": (mp.masks[p], mp.achieved_areas[p]),
                }
            )
    areas, coeffs = list(analysis.compare_areas), list(mp_config.l1_coeffs)
    save_comparison_figure(job.out / "compare.png", drawn, areas, coeffs)
    summary = comparison_summary(rows)
    document = {
        "compare_areas": areas,
        "mp_options": asdict(mp_config),
        "summary": summary,
        "rows": rows,
    }
    tables = {"compare.csv": rows}
    return AnalysisOutput(
        "compare", document, summary, tables, {"compare/table": rows}, verdict(rows)
    )


def comparison_estimate(job: Job, analysis: AnalysisConfig, mp_config, batch, targets) -> str:
    """The estimate line: extremal perturbations' masks at ``compare_areas`` (calibrated steps)
    plus meaningful perturbations (two steps timed on the first pair, times ``max_iter``)."""
    image, target, per_image = first_pair(job.loaded.model, batch, targets)
    pairs = max(round(len(job.images.ids) * per_image), 1)
    mp = method_estimate(
        "meaningful_perturbation", job.loaded.model, image, target, asdict(mp_config), pairs, 0
    )
    also = (mp.seconds, f"meaningful perturbations: {mp.work}")
    return masks_estimate(job, list(analysis.compare_areas), 1, batch, targets, also)


def both_methods(job: Job, analysis: AnalysisConfig, mp_config: MeaningfulConfig, batch, targets):
    """Extremal perturbations at ``analysis.compare_areas`` (the run's method settings) and
    meaningful perturbations at each λ₁ of ``mp_config``, for the same pairs."""
    model = job.loaded.model
    ep = extremal_perturbation(
        model, batch, targets, list(analysis.compare_areas), **explain_options(job.cfg)
    )
    mp = meaningful(model, batch, targets, mp_config, job.cfg.trainer)
    return ep, mp


def comparison_rows(job: Job, analysis: AnalysisConfig, ep, mp, ids: list[str]) -> list[dict]:
    """Per pair, one row per extremal area (``area``: the fraction kept; ``score``: the
    preserve game's reward) and per λ₁ (``area``: the fraction deleted; ``score``: f_c of the
    perturbed image, e.g. the class probability)."""
    rows = []
    for p, image in enumerate(ids):
        target = int(ep.targets[p])
        common = {
            "image": image,
            "target": target,
            "target_name": class_name(job.loaded.classes, target),
        }
        for k, requested in enumerate(analysis.compare_areas):
            rows.append(
                {
                    **common,
                    "method": "extremal",
                    "setting": f"area={requested:g}",
                    "requested_area": float(requested),
                    "area": float(ep.achieved_areas[p, k]),
                    "score": float(ep.rewards[p, k]),
                }
            )
        for k, coeff in enumerate(mp.l1_coeffs.tolist()):
            rows.append(
                {
                    **common,
                    "method": "meaningful",
                    "setting": f"l1={coeff:g}",
                    "requested_area": None,
                    "area": float(mp.achieved_areas[p, k]),
                    "score": float(mp.scores[p, k]),
                }
            )
    return rows


def comparison_summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per method and setting: the mean, least and largest area over the pairs; for
    meaningful perturbations the share of masks deleting nothing, for extremal ones the mean
    distance to the requested area."""
    summary: dict[str, float] = {}
    for key in dict.fromkeys((r["method"], r["setting"]) for r in rows):
        chosen = [r for r in rows if (r["method"], r["setting"]) == key]
        areas = [r["area"] for r in chosen]
        name = f"{key[0]}/{key[1]}"
        summary[f"{name}/area_mean"] = sum(areas) / len(areas)
        summary[f"{name}/area_min"] = min(areas)
        summary[f"{name}/area_max"] = max(areas)
        if key[0] == "meaningful":
            summary[f"{name}/deletes_nothing"] = sum(a < NOTHING for a in areas) / len(areas)
        else:
            errors = [abs(r["area"] - r["requested_area"]) for r in chosen]
            summary[f"{name}/area_error_mean"] = sum(errors) / len(errors)
    return summary


def verdict(rows: list[dict[str, Any]]) -> list[str]:
    """One line per method: its settings' areas (mean, least–largest)."""
    lines = []
    for method, word in (("meaningful", "deletes"), ("extremal", "keeps")):
        parts = []
        for setting in dict.fromkeys(r["setting"] for r in rows if r["method"] == method):
            areas = [r["area"] for r in rows if (r["method"], r["setting"]) == (method, setting)]
            parts.append(
                f"{setting} {word} {sum(areas) / len(areas):.3f} ({min(areas):.3f}–{max(areas):.3f})"
            )
        lines.append(f"{method} perturbations: " + "; ".join(parts))
    return lines
