"""The end of a run (jobs/verdict): the convergence block of summary.json and the verdict."""

from __future__ import annotations

from lightning_extremal.jobs.run.verdict import (
    NAMED_MASKS,
    convergence_summary,
    mask_label,
    print_verdict,
    verdict_lines,
)


def _row(image: str, area: float, achieved: float, **extra) -> dict:
    converged = abs(achieved - area) <= 0.05
    return {"image": image, "target_name": "cross", "area": area, "achieved_area": achieved,
            "converged": converged, **extra}  # fmt: skip


def test_convergence_summary_counts_and_names_the_unconverged_masks():
    rows = [_row("a", 0.1, 0.12), _row("a", 0.2, 0.31), _row("b", 0.1, 0.02)]
    rows.append({"image": "c", "relative_distance": 0.1})  # an inversion row: not judged
    summary = convergence_summary(rows)
    assert {k: summary[k] for k in ("masks", "converged", "not_converged")} == {
        "masks": 3,
        "converged": 1,
        "not_converged": [
            "a cross @ 0.2 (achieved 0.310, 55% off)",
            "b cross @ 0.1 (achieved 0.020, 80% off)",
        ],
    }
    # What converged meant: both criteria, with their tolerances.
    assert summary["area_rtol"] == 0.2
    assert summary["reward_stall"] == {
        "last_fraction_of_steps": 0.1,
        "min_window_steps": 4,
        "rtol_of_run_excursion": 0.05,
        "rtol_of_value": 1e-3,
    }
    assert "0.2·area" in summary["criteria"] and "reward stalled" in summary["criteria"]
    assert convergence_summary([{"image": "c", "relative_distance": 0.1}]) is None


def test_verdict_three_lines_and_a_warning_naming_the_masks(tmp_path, capsys):
    (tmp_path / "overlays").mkdir()
    rows = [_row(f"img{i}", 0.1, 0.4) for i in range(NAMED_MASKS + 2)] + [_row("ok", 0.1, 0.1)]
    summary = {
        "convergence": convergence_summary(rows),
        "quality": {"iou": 0.5, "pointing": 0.75, "pairs": 8.0},
    }
    lines = verdict_lines(summary, tmp_path)
    assert len(lines) == 3
    assert lines[0].startswith(f"masks converged: 1/{NAMED_MASKS + 3} ")
    assert "img0 cross @ 0.1 (achieved 0.400, 300% off)" in lines[0]
    assert f"img{NAMED_MASKS}" not in lines[0]  # only the first few by name, then a count
    assert f"… ({NAMED_MASKS + 2} in summary.json)" in lines[0]
    # The quality figure says how many of the masks it describes had not converged.
    assert lines[1] == (
        "pointing: 6/8 hits on the ground truth, mean IoU with the object 0.50 "
        f"({NAMED_MASKS + 2} of {NAMED_MASKS + 3} masks not converged)"
    )
    assert lines[2].startswith(f"pictures: {tmp_path / 'overlays'}/")
    print_verdict(summary, tmp_path)
    captured = capsys.readouterr()
    assert f"warning: {NAMED_MASKS + 2} of {NAMED_MASKS + 3} masks did not converge" in captured.err
    assert captured.out.count("\n") == 3


def test_verdict_of_a_converged_run_without_ground_truth_has_no_warning(tmp_path, capsys):
    summary = {"convergence": convergence_summary([_row("a", 0.1, 0.11)]), "quality": None}
    print_verdict(summary, tmp_path)
    captured = capsys.readouterr()
    assert captured.out == (
        "  masks converged: 1/1 (area within max(0.2·area, one parameter's share) of the "
        "requested one and reward stalled over the last 10% of steps)\n"
    )
    assert captured.err == ""


def test_an_unconverged_mask_at_its_area_is_said_to_be_still_moving():
    # The area passed (3 % off) but the mask did not converge: its reward had not stalled.
    row = {**_row("a", 0.2, 0.206), "converged": False}
    assert mask_label(row) == "a cross @ 0.2 (achieved 0.206, reward still moving)"
    assert mask_label({**row, "area": 3.0}) == "a cross @ 3 (achieved 0.206)"  # a count
    assert mask_label({**row, "converged": True}) == "a cross @ 0.2 (achieved 0.206)"


def test_a_converged_run_s_quality_line_has_no_caveat(tmp_path):
    summary = {
        "convergence": convergence_summary([_row("a", 0.1, 0.11)]),
        "quality": {"iou": 0.5, "pointing": 1.0, "pairs": 1.0},
    }
    assert verdict_lines(summary, tmp_path)[1].endswith("mean IoU with the object 0.50")
