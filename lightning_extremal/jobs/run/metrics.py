"""The numbers a sweep can optimise, from a run's summary rows: the same names in the sweep's
table (from ``summary.json``) and in every chunk's W&B summary."""

from __future__ import annotations

from typing import Any

#: Per-mask numbers averaged over the rows: overall (runs with other areas share the chart)
#: and per requested area (``area_<a>/<name>``).
MEANS = ("reward", "achieved_area", "area_error")


def area_error(row: dict[str, Any]) -> float:
    """``|achieved − requested|`` area of one summary row."""
    return abs(float(row["achieved_area"]) - float(row["area"]))


def run_metrics(
    rows: list[dict[str, Any]], quality: dict[str, float] | None = None
) -> dict[str, float]:
    """``quality/iou``, ``quality/pointing`` (with ground truth); ``reward``,
    ``achieved_area``, ``area_error`` and ``area_<a>/…`` (means over the masks' rows);
    ``convergence/converged_fraction`` and ``convergence/not_converged`` (masks)."""
    metrics = {f"quality/{k}": float(v) for k, v in (quality or {}).items() if k != "pairs"}
    masks = [
        {**r, "area_error": area_error(r)} for r in rows if "reward" in r and "achieved_area" in r
    ]
    for name in MEANS:
        if masks:
            metrics[name] = sum(r[name] for r in masks) / len(masks)
        for area in sorted({r["area"] for r in masks}):
            values = [r[name] for r in masks if r["area"] == area]
            metrics[f"area_{area:g}/{name}"] = sum(values) / len(values)
    judged = [bool(r["converged"]) for r in rows if "converged" in r]
    if judged:
        metrics["convergence/converged_fraction"] = sum(judged) / len(judged)
        metrics["convergence/not_converged"] = float(len(judged) - sum(judged))
    return metrics


def job_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """:func:`run_metrics` of a job's ``summary.json`` (all its chunks)."""
    return run_metrics(summary.get("results", []), summary.get("quality"))
