"""What a finished run tells its user: which masks converged, how they point, where to look."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ...ops import convergence as criteria

#: At most this many unconverged masks are named on the console (all are in summary.json).
NAMED_MASKS = 6
#: Folders of pictures a run writes, by the kind of mask.
PICTURE_FOLDERS = ("overlays", "channels", "diff", "comparisons", "inversions")


def mask_label(row: dict[str, Any]) -> str:
    """``image class @ area (achieved x)`` of one summary row; for a mask that did not
    converge, what is known of why: its area error when beyond :data:`AREA_RTOL` of the area
    (``55% off``), else ``reward still moving`` (its area passed, so its reward had not
    stalled); nothing for an area given as a channel count."""
    name = row.get("target_name", row.get("target", ""))
    area, achieved = row["area"], row["achieved_area"]
    why = ""
    if row.get("converged") is False and area < 1:  # not a channel count
        error = abs(achieved - area) / area
        why = f", {error:.0%} off" if error > criteria.AREA_RTOL else ", reward still moving"
    return f"{row['image']} {name} @ {area:g} (achieved {achieved:.3f}{why})"


def convergence_summary(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """``{"masks", "converged", "not_converged": [labels], "criteria", "area_rtol",
    "area_floor", "reward_stall"}`` over the rows that judge a mask (``converged`` key), or
    None when none does: the counts, then what converged meant (both criteria of
    :func:`~lightning_extremal.ops.convergence.converged`, in words and their tolerances)."""
    judged = [row for row in rows if "converged" in row]
    if not judged:
        return None
    failed = [mask_label(row) for row in judged if not row["converged"]]
    return {
        "masks": len(judged),
        "converged": len(judged) - len(failed),
        "not_converged": failed,
        "criteria": criteria.describe(),
        "area_rtol": criteria.AREA_RTOL,
        "area_floor": "one mask parameter's share of the mask (1/#parameters)",
        "reward_stall": {
            "last_fraction_of_steps": criteria.STALL_FRACTION,
            "min_window_steps": criteria.STALL_MIN_WINDOW,
            "rtol_of_run_excursion": criteria.STALL_RTOL,
            "rtol_of_value": criteria.STALL_VALUE_RTOL,
        },
    }


def convergence_line(convergence: dict[str, Any]) -> str:
    """``masks converged: c/n (what converged means)``, naming the first unconverged masks."""
    total, done = convergence["masks"], convergence["converged"]
    line = f"masks converged: {done}/{total} ({convergence['criteria']})"
    failed = convergence["not_converged"]
    if failed:
        named = ", ".join(failed[:NAMED_MASKS])
        more = f", … ({len(failed)} in summary.json)" if len(failed) > NAMED_MASKS else ""
        line += f"; not converged: {named}{more}"
    return line


def unconverged_note(convergence: dict[str, Any] | None) -> str:
    """`` (3 of 16 masks not converged)`` beside a quality figure when some masks did not
    converge (their scores describe masks that were still moving), else ""."""
    if not convergence or not convergence["not_converged"]:
        return ""
    return f" ({len(convergence['not_converged'])} of {convergence['masks']} masks not converged)"


def verdict_lines(summary: dict[str, Any], out: Path) -> list[str]:
    """The end of a run in three lines: convergence, pointing on the ground truth, pictures."""
    lines = []
    convergence = summary.get("convergence")
    if convergence:
        lines.append(convergence_line(convergence))
    quality = summary.get("quality")
    if quality:
        pairs = int(quality["pairs"])
        hits = round(quality["pointing"] * pairs)
        lines.append(
            f"pointing: {hits}/{pairs} hits on the ground truth, "
            f"mean IoU with the object {quality['iou']:.2f}{unconverged_note(convergence)}"
        )
    folders = [f"{out / name}/" for name in PICTURE_FOLDERS if (out / name).is_dir()]
    if folders:
        lines.append(
            f"pictures: {', '.join(folders)} (all on one page: lightning-extremal report {out})"
        )
    return lines


def print_verdict(summary: dict[str, Any], out: Path) -> None:
    """Print :func:`verdict_lines`; unconverged masks also as a warning line on stderr."""
    for line in verdict_lines(summary, out):
        print(f"  {line}")
    convergence = summary.get("convergence")
    if convergence and convergence["not_converged"]:
        failed = len(convergence["not_converged"])
        print(
            f"lightning-extremal: warning: {failed} of {convergence['masks']} masks did not "
            f"converge (achieved area more than {criteria.AREA_RTOL:.0%} of it from the "
            "requested one, or reward still moving over the last "
            f"{criteria.STALL_FRACTION:.0%} of steps; listed in summary.json under "
            "convergence): run more steps "
            "(method.max_iter=…) or the default schedule instead of a shorter preset",
            file=sys.stderr,
            flush=True,
        )
