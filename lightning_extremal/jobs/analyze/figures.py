"""The figures of the analyses (matplotlib, imported inside the functions that draw): each
pair's area curve, the curves across a run with the sufficient areas, and the objects figure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ...config import AnalysisConfig
from ...viz import overlay
from ..report.figures import pyplot
from ..run.store import atomic_write_bytes

#: Colours of the games' curves.
GAME_COLOURS = {"preserve": "C0", "delete": "C3"}


def _save(fig, path: Path) -> None:
    import io

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    pyplot().close(fig)
    atomic_write_bytes(buffer.getvalue(), path)


def _levels(ax, preserve: float | None, delete: float | None) -> None:
    for level, game in ((preserve, "preserve"), (delete, "delete")):
        if level is not None:
            ax.axhline(level, color=GAME_COLOURS[game], linestyle=":", linewidth=0.9)


def save_pair_curve(path: Path, record: dict[str, Any], image, masks, curve) -> None:
    """One pair: its normalised score over the areas per game (dotted: the levels; dashed:
    the sufficient / necessary area), beside the image with the mask of the first grid area
    at or above the sufficient area (else the largest)."""
    plt = pyplot()
    areas = curve.areas.tolist()
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.2, 2.9), width_ratios=(1.6, 1))
    for game in curve.curves:
        left.plot(areas, record[game], "o-", color=GAME_COLOURS[game], ms=3, label=game)
    _levels(left, _fraction(curve, "preserve"), _fraction(curve, "delete"))
    for key, game in (("sufficient_area", "preserve"), ("necessary_area", "delete")):
        value = record[key]
        if value is not None and math.isfinite(value):
            left.axvline(value, color=GAME_COLOURS[game], linestyle="--", linewidth=0.9)
    left.set(
        xscale="log",
        xlabel="area",
        ylabel=f"{curve.score} / full image's",
        title=f"{record['image']}: {record['target_name']}",
    )
    left.title.set_fontsize(9)
    wobbly = [g for g in curve.curves if record.get(f"{g}_non_monotone")]
    if wobbly:  # flagged on the figure too: more steps would help
        left.set_xlabel(f"area ({', '.join(wobbly)} curve not monotone: more steps would help)")
    left.legend(fontsize=7)
    k = _shown_area(areas, record["sufficient_area"])
    right.imshow(overlay(image, masks[k]).permute(1, 2, 0).numpy())
    text = _area_text(record["sufficient_area"], record.get("sufficient_bound"), areas)
    right.set_title(f"{text}; mask at {areas[k]:g}", fontsize=8)
    right.axis("off")
    _save(fig, path)


def _fraction(curve, game: str) -> float | None:
    if game not in curve.curves:
        return None
    return curve.preserve_fraction if game == "preserve" else curve.delete_fraction


def _shown_area(areas: list[float], sufficient: float | None) -> int:
    """The first grid area at or above ``sufficient`` (the largest when there is none)."""
    if sufficient is None or not math.isfinite(sufficient):
        return len(areas) - 1
    return next((k for k, a in enumerate(areas) if a >= sufficient - 1e-9), len(areas) - 1)


def _area_text(value: float | None, bound: str | None = None, areas=None) -> str:
    """``a* = 0.158``, ``a* ≤ 0.01`` (reached at the grid's smallest area: a bound), ``a* not
    reached`` or ``a* undefined``."""
    if value is None or math.isnan(value):
        return "a* undefined"
    if math.isinf(value):
        return "a* not reached"
    return f"a* ≤ {areas[0]:g}" if bound == "upper" and areas else f"a* = {value:.3f}"


def save_area_curve_summary(
    path: Path, pairs: list[dict[str, Any]], analysis: AnalysisConfig, score: str
) -> None:
    """Across pairs: per game the median curve and its quartile band; the histogram of the
    sufficient (and necessary) areas, with how many pairs never reach the level."""
    plt = pyplot()
    areas = np.array(analysis.areas)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    for game in analysis.games:
        values = np.array([p[game] for p in pairs], dtype=float)
        if not len(values) or np.isnan(values).all():
            continue
        low, mid, high = np.nanpercentile(values, [25, 50, 75], axis=0)
        left.fill_between(areas, low, high, color=GAME_COLOURS[game], alpha=0.2, linewidth=0)
        left.plot(areas, mid, "o-", color=GAME_COLOURS[game], ms=3, label=f"{game} (median)")
    _levels(
        left,
        analysis.preserve_fraction if "preserve" in analysis.games else None,
        analysis.delete_fraction if "delete" in analysis.games else None,
    )
    left.set(xscale="log", xlabel="area", ylabel=f"{score} / full image's")
    left.set_title(f"{len(pairs)} pairs: median, 25–75 % band", fontsize=9)
    left.legend(fontsize=7)
    _area_histogram(right, pairs, analysis)
    _save(fig, path)


def _area_histogram(ax, pairs: list[dict[str, Any]], analysis: AnalysisConfig) -> None:
    edges = np.geomspace(analysis.areas[0], analysis.areas[-1], 13)
    notes = []
    for key, game in (("sufficient_area", "preserve"), ("necessary_area", "delete")):
        if game not in analysis.games:
            continue
        values = [p[key] for p in pairs if p[key] is not None]
        finite = [v for v in values if math.isfinite(v)]
        ax.hist(finite, bins=edges, color=GAME_COLOURS[game], alpha=0.6, label=key)
        floor = sum(1 for p in pairs if p.get(key.replace("_area", "_bound")) == "upper")
        at_floor = f", {floor} ≤ {analysis.areas[0]:g}" if floor else ""
        notes.append(f"{key}: {len(values) - len(finite)} of {len(pairs)} not reached{at_floor}")
    ax.set(xscale="log", xlabel="area", ylabel="pairs")
    ax.set_title("; ".join(notes), fontsize=8)
    ax.legend(fontsize=7)


def save_objects_figure(
    path: Path, rows: list[dict[str, Any]], coverage: list[dict[str, Any]], score: str
) -> None:
    """Left: the gain of each object pair and of all objects over the blurred image against
    the sum of their parts' gains (on the diagonal: cumulative). Right: the share of each
    object covered by the sufficient-area mask against the object's size."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for kind, colour in (("pair", "C1"), ("all", "C2")):
        chosen = [r for r in rows if r["kind"] == kind]
        left.scatter(
            [r["sum_of_parts"] for r in chosen],
            [r["gain"] for r in chosen],
            s=14,
            color=colour,
            label=f"{kind} ({len(chosen)})",
        )
    values = [v for r in rows if r["kind"] != "single" for v in (r["gain"], r["sum_of_parts"])]
    if values:
        lo, hi = min(values + [0.0]), max(values + [0.0])
        left.plot([lo, hi], [lo, hi], color="0.5", linewidth=0.8, linestyle="--")
    left.set(xlabel="sum of the objects' gains alone", ylabel="gain of the objects together")
    left.set_title(f"{score} gain over the blurred image", fontsize=9)
    left.legend(fontsize=7)
    _coverage_panel(right, coverage)
    _save(fig, path)


def _coverage_panel(ax, coverage: list[dict[str, Any]]) -> None:
    for is_target, colour, label in ((True, "C0", "target's object"), (False, "C7", "other")):
        chosen = [c for c in coverage if c["is_target"] == is_target and c["coverage"] is not None]
        ax.scatter(
            [c["object_area"] for c in chosen],
            [c["coverage"] for c in chosen],
            s=14,
            color=colour,
            label=f"{label} ({len(chosen)})",
        )
    ax.set(xlabel="object area (fraction of the image)", ylabel="share covered by a* mask")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("large objects are recognised by their details?", fontsize=9)
    ax.legend(fontsize=7)


def save_comparison_figure(path: Path, pairs: list[dict[str, Any]], areas, coeffs) -> None:
    """Rows: pairs; columns: the image, meaningful perturbations' deletion mask at each λ₁
    (its deleted area), extremal perturbations' preserve mask at each area (its kept area)."""
    plt = pyplot()
    cols = 1 + len(coeffs) + len(areas)
    rows = max(len(pairs), 1)
    fig, axes = plt.subplots(rows, cols, figsize=(1.75 * cols, 1.9 * rows), squeeze=False)
    for ax_row, pair in zip(axes, pairs, strict=False):
        image = pair["image"].float()
        image = image[:3] if image.shape[0] >= 3 else image[:1].expand(3, -1, -1)
        (mp_masks, mp_areas), (ep_masks, ep_areas) = pair["mp"], pair["ep"]
        tiles = [(image, pair["name"])]
        tiles += [
            (overlay(image, mp_masks[k]), f"MP λ₁={c:g}\ndeletes {float(mp_areas[k]):.3f}")
            for k, c in enumerate(coeffs)
        ]
        tiles += [
            (overlay(image, ep_masks[k]), f"EP a={a:g}\nkeeps {float(ep_areas[k]):.3f}")
            for k, a in enumerate(areas)
        ]
        for ax, (tile, label) in zip(ax_row, tiles, strict=True):
            ax.imshow(tile.clamp(0, 1).permute(1, 2, 0).numpy())
            ax.set_title(label, fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    _save(fig, path)  # no title: the columns say what each mask is and its area
