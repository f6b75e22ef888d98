"""``lightning-extremal analyze``: both analyses end to end on synthetic images (tiny CNN, a
few steps), their files, the W&B table read back with wandb's reader, the report's section,
and the one-line refusals of bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from lightning_extremal.cli import main
from tests.cli.test_main import one_error_line
from tests.helpers import read_wandb_run

AREAS = (0.1, 0.3, 0.6)
#: A tiny, quick analysis: TinyConvNet on 2 synthetic 32 px images, 4 steps, 3 areas.
TINY = [
    "model=tests.helpers:six_class_model",
    "data=synthetic",
    "data.num_images=2",
    "data.size=32",
    "max_iter=4",
    f"areas=[{','.join(map(str, AREAS))}]",
    "step=4",
    "sigma=8",
    "warm_start=none",
    "trainer.progress=false",
    "trainer.compile=false",
    "trainer.accelerator=cpu",
]


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as png:
        return png.size


@pytest.mark.slow
def test_area_curve_command_writes_tables_figures_wandb_and_a_report(
    tmp_path, offline_wandb, capsys
):
    out = tmp_path / "curve"
    assert main(["analyze", "area-curve", *TINY, f"output_dir={out}"]) == 0
    printed = capsys.readouterr().out
    assert "sufficient_area (keeping it gives ≥ 1 × the full prob): reached by" in printed
    # the estimate first, then a line per game as it starts and ends, then the results
    order = [
        "estimate: ",
        "area curve: chunk 1/1, game 1/2 (preserve): 2 image(s) × 3 areas, 4 steps…",
        "area curve: chunk 1/1, game 1/2 (preserve) done in",
        "area curve: chunk 1/1, game 2/2 (delete): 2 image(s) × 3 areas, 4 steps…",
        "area curve: chunk 1/1, game 2/2 (delete) done in",
        "lightning-extremal: results in",
    ]
    assert [printed.index(line) for line in order] == sorted(printed.index(x) for x in order)
    assert "(2 game(s) × 6 masks × 4 steps); `max_iter=…` (now 4)" in printed
    rows = _csv(out / "area_curve.csv")
    assert len(rows) == 2 * len(AREAS)
    assert [float(r["area"]) for r in rows[: len(AREAS)]] == list(AREAS)
    assert {"preserve", "delete", "sufficient_area", "necessary_area"} <= set(rows[0])
    document = json.loads((out / "area_curve.json").read_text())
    assert document["analysis"] == "area-curve" and document["score"] == "prob"
    assert len(document["pairs"]) == 2 and len(document["pairs"][0]["preserve"]) == len(AREAS)
    pair = document["pairs"][0]
    assert pair["sufficient_bound"] in (None, "upper", "lower")
    assert len(pair["delete_converged"]) == len(AREAS) and "delete_non_monotone" in pair
    assert document["summary"]["area_curve/delete/masks"] == 2 * len(AREAS)
    marker = json.loads((out / "analysis.json").read_text())
    assert marker["analysis"] == "area-curve" and marker["analysis_config"]["areas"] == list(AREAS)
    for figure in [out / "area_curve.png", *(out / p["figure"] for p in document["pairs"])]:
        assert _png_size(figure)[0] > 300
    (run_dir,) = (out / "wandb").glob("offline-run-*")
    run = read_wandb_run(run_dir)
    assert run["summary"]["area_curve/pairs"] == 2
    assert any("area_curve/table" in str(key) for row in run["history"] for key in row)
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "Area curve" in page and "area_curve.png" in page and "sufficient area" in page


@pytest.mark.slow
def test_compare_command_sets_both_methods_side_by_side(tmp_path, offline_wandb, capsys):
    """Meaningful perturbations' deleted area follows λ₁ (a hundred times the penalty deletes
    less), extremal perturbations keep the area asked for: one row per pair and setting, the
    figure, the W&B table and the report's section."""
    out = tmp_path / "compare"
    mp = "analysis.mp_options={max_iter: 25, grid: 8, blur_sigma: 4.0, l1_coeffs: [1e-5, 1e-3]}"
    args = [a for a in TINY if not a.startswith(("max_iter=", "areas="))] + ["max_iter=30", mp]
    args += ["analysis.compare_areas=[0.2]", f"output_dir={out}"]
    assert main(["analyze", "compare", *args]) == 0
    assert "meaningful perturbations: l1=1e-05 deletes" in capsys.readouterr().out
    rows = _csv(out / "compare.csv")
    assert [(r["method"], r["setting"]) for r in rows[:3]] == [
        ("extremal", "area=0.2"),
        ("meaningful", "l1=1e-05"),
        ("meaningful", "l1=0.001"),
    ]
    assert len(rows) == 2 * 3
    summary = json.loads((out / "compare.json").read_text())["summary"]
    weak, strong = (summary[f"meaningful/l1={c}/area_mean"] for c in ("1e-05", "0.001"))
    assert weak > strong  # the deleted area is the penalty's outcome, not a setting
    assert 0 <= summary["extremal/area=0.2/area_error_mean"] <= 1
    assert _png_size(out / "compare.png")[0] > 500
    (run_dir,) = (out / "wandb").glob("offline-run-*")
    assert any(
        "compare/table" in str(key) for row in read_wandb_run(run_dir)["history"] for key in row
    )
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "Meaningful vs extremal perturbations" in page and "compare.png" in page


@pytest.mark.slow
def test_objects_command_writes_contributions_coverage_and_figure(tmp_path, offline_wandb):
    out = tmp_path / "objects"
    args = ["data.multi_object=true", "data.targets=labels", "logger=none"]
    assert main(["analyze", "objects", *TINY, *args, f"output_dir={out}"]) == 0
    rows = _csv(out / "objects.csv")
    kinds = {r["kind"] for r in rows}
    assert kinds <= {"single", "pair", "all"} and "all" in kinds
    for row in rows:
        gain, parts = float(row["gain"]), float(row["sum_of_parts"])
        if row["kind"] == "single":
            assert gain == pytest.approx(parts)
    coverage = _csv(out / "objects_coverage.csv")
    assert {"object_area", "coverage", "is_target"} <= set(coverage[0])
    assert any(r["is_target"] == "True" for r in coverage)
    assert _png_size(out / "objects.png")[0] > 300
    assert json.loads((out / "analysis.json").read_text())["analysis"] == "objects"
    assert not (out / "wandb").exists()
    assert main(["report", str(out)]) == 0
    assert "Objects" in (out / "report.html").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["analyze", "area-curv"], "unknown analysis 'area-curv'; did you mean 'area-curve'? "
         "(analyses: area-curve, objects, compare)"),
        (["analyze"], "analyze needs an analysis: lightning-extremal analyze ANALYSIS"),
        (["analyze", "area-curve", "areas=[0.1,1.5]"],
         "analysis.areas must be fractions in (0, 1]; got 1.5 in [0.1, 1.5]"),
        (["analyze", "area-curve", "areas=[0,0.5]"],
         "analysis.areas must be fractions in (0, 1]; got 0.0 in [0.0, 0.5]"),
        (["analyze", "objects", "analysis.scor=prob"],
         "unknown key analysis.scor; did you mean 'analysis.score'?"),
        (["analyze", "objects", "analysis.score=logit"],
         "analysis.score must be one of ['prob', 'reward']; got 'logit'"),
        (["analyze", "area-curve", "method=channel"],
         "analyze area-curve explains input masks; got method.kind='channel' (allowed: input)"),
        (["analyze", "objects", "trainer.devices=2", "trainer.strategy=ddp"],
         "analyze objects runs in one process; got 2"),
        (["analyze", "compare", "analysis.mp_options={max_iters: 3}"],
         "unknown analysis.mp_options field(s) ['max_iters']"),
        (["analyze", "compare", "analysis.compare_areas=[0.1,2]"],
         "analysis.compare_areas must be fractions in (0, 1]; got 2"),
        (["analyze", "area-curve", "--overwrit"],
         "analyze: unknown option '--overwrit'; did you mean '--overwrite'?"),
    ],
)  # fmt: skip
def test_bad_analyze_input_is_one_line_naming_the_value(capsys, argv, message):
    assert main(argv) == 2
    assert one_error_line(capsys).startswith(message)


def test_objects_refuses_data_without_ground_truth(tmp_path, capsys, offline_wandb):
    from tests.helpers import write_images

    write_images(tmp_path / "photos", 1, size=(16, 16))
    argv = ["analyze", "objects", *TINY, f"data={tmp_path / 'photos'}", "logger=none"]
    assert main([*argv, f"output_dir={tmp_path / 'out'}"]) == 2
    line = one_error_line(capsys)
    assert line.startswith("analyze objects needs images with ground-truth objects; data.source=")
    assert "(allowed: demo, synthetic, photos, voc07, coco14, or data.ground_truth=FOLDER" in line


def test_a_folder_holding_another_analysis_is_refused_unless_overwrite(tmp_path, capsys):
    """``--overwrite`` deletes what the analysis listed as written, and nothing else."""
    from types import SimpleNamespace

    from lightning_extremal.errors import UsageError
    from lightning_extremal.jobs.analyze.job import claim_analysis_folder
    from lightning_extremal.ops.digest import file_digest

    out = tmp_path / "out"
    out.mkdir()
    (out / "objects.csv").write_text("x\n")
    (out / "notes.txt").write_text("mine")
    listed = {"objects.csv": file_digest(out / "objects.csv")}
    (out / "analysis.json").write_text(json.dumps({"analysis": "objects", "written": listed}))
    job = SimpleNamespace(out=out, foreign=set())
    with pytest.raises(UsageError, match="holds the 'objects' analysis's results.*--overwrite"):
        claim_analysis_folder(job, "area-curve", overwrite=False)
    claim_analysis_folder(job, "area-curve", overwrite=True)
    assert not (out / "objects.csv").exists() and not (out / "analysis.json").exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert "removed 2 file(s) earlier jobs wrote, kept 1 other file(s)" in capsys.readouterr().out
    (out / "manifest.json").write_text("{}")
    with pytest.raises(UsageError, match="holds a run's results"):
        claim_analysis_folder(job, "objects", overwrite=False)
    (out / "manifest.json").unlink()
    with pytest.raises(UsageError, match="is not empty and holds no lightning-extremal results"):
        claim_analysis_folder(job, "objects", overwrite=False)


def test_analyze_help_is_quick_and_names_the_analyses_and_keys(capsys):
    assert main(["analyze", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: lightning-extremal analyze ANALYSIS")
    assert "area-curve" in out and "objects" in out and "analysis.preserve_fraction=1.0" in out
    assert main(["analyze", "area-curve", "--help"]) == 0
    one = capsys.readouterr().out
    assert "Sufficient area a*" in one and "cumulative" not in one
    assert main(["help", "analyze"]) == 0
    assert capsys.readouterr().out == out


def test_analyze_cfg_prints_both_configurations(capsys):
    assert main(["analyze", "area-curve", "areas=[0.1,0.2]", "max_iter=7", "--cfg"]) == 0
    out = capsys.readouterr().out
    assert "max_iter: 7" in out and "analysis:\n  areas:\n  - 0.1\n  - 0.2" in out


def test_area_curve_verdict_marks_bounds_unconverged_masks_and_non_monotone_curves():
    """Hand-built pairs: necessary areas at the grid's floor are printed as ``≤ 0.1`` (a
    bound) and counted; a delete curve rising by 0.3 is named with its area and the advice."""
    from lightning_extremal.config import AnalysisConfig
    from lightning_extremal.jobs.analyze.area_curve import (
        area_curve_summary,
        area_curve_verdict,
        summary_bounds,
    )

    analysis = AnalysisConfig(areas=list(AREAS))

    def pair(name, necessary, delete, converged):
        return {
            "pair": name,
            "sufficient_area": 0.3,
            "necessary_area": necessary,
            "preserve_non_monotone": [],
            "delete_non_monotone": delete,
            "preserve_converged": [True] * 3,
            "delete_converged": converged,
        }

    pairs = [pair("a", 0.1, [0.6], [True, False, True]), pair("b", 0.1, [], [True] * 3)]
    summary = area_curve_summary(pairs, analysis)
    assert summary["area_curve/necessary_area/at_floor"] == 2
    assert summary["area_curve/delete/unconverged"] == 1 and summary["area_curve/delete/masks"] == 6
    assert summary["area_curve/delete/non_monotone"] == 1
    assert summary_bounds(summary, list(AREAS))["necessary_area"] == dict.fromkeys(
        ("q1", "median", "q3"), "upper"
    )
    lines = area_curve_verdict(summary, analysis, "prob", pairs)
    assert lines[0] == (
        "sufficient_area (keeping it gives ≥ 1 × the full prob): reached by 2/2 pairs; "
        "median 0.3 (quartiles 0.3 – 0.3)"
    )
    assert lines[1] == (
        "necessary_area (deleting it gives ≤ 0.5 × the full prob): reached by 2/2 pairs (2 "
        "already at the grid's smallest area 0.1: ≤ it); median ≤ 0.1 (quartiles ≤ 0.1 – ≤ 0.1)"
        "; 1/6 delete masks unconverged"
    )
    assert lines[2] == (
        "delete curve not monotone (beyond 0.05) for 1/2 pairs: a at areas 0.6; more steps "
        "(method.max_iter) would help"
    )
