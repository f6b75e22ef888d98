"""The benchmark command (jobs/benchmark): prints, writes, resumes, rejects bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import make_fake_voc


def _chunk_times(out: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in sorted((out / "chunks").rglob("*.pt"))}


def test_benchmark_command_prints_writes_and_resumes(tmp_path, capsys):
    from lightning_extremal.cli import main

    out = tmp_path / "bench"
    args = [
        "benchmark", "pointing", "dataset=synthetic", "model=tests.helpers:six_class_model",
        "methods=[center,grad_cam]", "synthetic_single=3", "synthetic_multi=1",
        "synthetic_size=48", "chunk_size=2", "logger=none", f"output_dir={out}",
    ]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| Center |" in printed and "| Grad-CAM |" in printed and "(All/Diff)" in printed
    # the estimate before any work, then a line as each method's chunk starts
    assert printed.startswith("estimate: ") and "grad_cam " in printed.splitlines()[0]
    assert "[center] chunk 1/2: 2 images (estimate " in printed
    assert "[grad_cam] chunk 2/2: 2 images (estimate " in printed
    assert "IoU @ object area" in printed
    rows = (out / "pointing.csv").read_text().splitlines()
    assert rows[0].startswith("method,label,dataset,model,pairs") and len(rows) == 3
    assert (out / "pointing_per_class.csv").is_file() and (out / "manifest.json").is_file()
    times = _chunk_times(out)
    assert len(times) == 4  # 2 methods × 2 chunks
    assert main(args) == 0
    assert "resumed: 4 finished chunk(s) skipped, 0 computed" in capsys.readouterr().out
    assert _chunk_times(out) == times
    # An interrupted run: one chunk file missing → only that chunk is computed again.
    Path(next(iter(times))).unlink()
    assert main(args) == 0
    assert "3 finished chunk(s) skipped, 1 computed" in capsys.readouterr().out
    assert json.loads((out / "manifest.json").read_text())["complete"] is True


def test_benchmark_on_fake_voc_and_faithfulness(tmp_path, capsys):
    main = _benchmark_cli

    make_fake_voc(tmp_path / "voc")
    args = [
        "pointing", "dataset=voc07", f"root={tmp_path / 'voc'}", "methods=[center,gradient]",
        "model=tests.helpers:twenty_class_model", "logger=none",
        f"output_dir={tmp_path / 'out'}",
    ]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "VOC07" in printed and "| Grad |" in printed and "3/1" in printed  # 3 pairs, 1 Diff
    args = [
        "faithfulness", "methods=[center,gradient]", "model=tests.helpers:six_class_model",
        "synthetic_single=2", "synthetic_multi=0", "synthetic_size=40", "curve_steps=4",
        "sanity_images=2", "logger=none", f"output_dir={tmp_path / 'faith'}",
    ]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "deletion AUC" in printed and "| Center |" in printed
    assert (tmp_path / "faith" / "faithfulness.csv").is_file()


def test_benchmark_bad_arguments(tmp_path, capsys):
    main = _benchmark_cli

    assert main(["pointing", "datset=voc07"]) == 2
    assert "unknown key 'datset'" in capsys.readouterr().err
    assert main(["pointing", "dataset=voc07"]) == 2
    assert "needs root=PATH" in capsys.readouterr().err
    assert main(["pointing", "methods=[gradient,nope]"]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
    assert main(["pointing", "model=tests.helpers:twenty_class_model", "logger=none",
                 "synthetic_single=1", "synthetic_multi=0", "methods=[center]",
                 f"output_dir={tmp_path}"]) == 2  # fmt: skip
    assert "(1, 20)" in capsys.readouterr().err


def _benchmark_cli(args: list[str]) -> int:
    """``lightning-extremal benchmark ARGS`` in this process; its exit status."""
    from lightning_extremal.cli import main

    return main(["benchmark", *args])


@pytest.mark.slow
def test_benchmark_ep_object_iou_modes(tmp_path, capsys):
    """EP's IoU at the object's area: each mode is its own chunk key (never mixed on resume),
    every value an IoU, and a bad mode is refused naming the allowed ones."""
    import torch

    out = tmp_path / "ep"
    common = [
        "pointing", "model=tests.helpers:six_class_model", "methods=[ep]", "synthetic_single=2",
        "synthetic_multi=0", "synthetic_size=48", "max_iter=3", "logger=none",
        "ep_options={step: 4, sigma: 8.0, max_blur: 5.0}", f"output_dir={out}",
    ]  # fmt: skip
    ious = {}
    for mode in ("interpolated", "summed", "optimised"):
        assert _benchmark_cli([*common, f"ep_object_iou={mode}"]) == 0
        printed = capsys.readouterr().out
        assert "finished chunk(s) skipped" not in printed or "0 finished" in printed, mode
        (chunk,) = sorted((out / "chunks").rglob("*.pt"))
        records = torch.load(chunk, weights_only=False)["records"]
        ious[mode] = [r["iou"] for r in records]
        assert len(ious[mode]) == 2 and all(0 <= v <= 1 for v in ious[mode]), (mode, ious)
        # the table's accuracy carries how many of its masks did not converge (3 steps)
        unconverged = sum(r["unconverged"] for r in records)
        assert all(r["masks"] == 4 for r in records) and unconverged > 0
        assert f"({unconverged}/8 masks unconverged) |" in printed
        row = (out / "pointing.csv").read_text().splitlines()
        assert row[0].endswith(",unconverged,masks") and row[1].endswith(f",{unconverged},8")
    assert _benchmark_cli([*common, "ep_object_iou=nope"]) == 2
    err = capsys.readouterr().err
    assert "ep_object_iou" in err and "interpolated" in err and "'nope'" in err


def test_benchmark_meaningful_perturbation_runs_pointing_and_faithfulness(tmp_path, capsys):
    """The comparison method through run_benchmark (alias ``mp``), its options in the chunk key;
    a bad ``mp_options`` field is refused before any work, naming the valid ones."""
    common = [
        "model=tests.helpers:six_class_model", "methods=[mp]", "synthetic_single=2",
        "synthetic_multi=0", "synthetic_size=40", "logger=none",
        "mp_options={max_iter: 3, grid: 7, blur_sigma: 4.0}",
    ]  # fmt: skip
    out = tmp_path / "pointing"
    assert _benchmark_cli(["pointing", *common, f"output_dir={out}"]) == 0
    printed = capsys.readouterr().out
    assert "| Meaningful perturbations |" in printed and "2/" in printed
    faith = ["faithfulness", *common, "curve_steps=3", "sanity_images=1"]
    assert _benchmark_cli([*faith, f"output_dir={tmp_path / 'faith'}"]) == 0
    assert "| Meaningful perturbations |" in capsys.readouterr().out
    assert _benchmark_cli(["pointing", *common, "mp_options={max_iters: 3}"]) == 2
    err = capsys.readouterr().err
    assert "mp_options" in err and "'max_iters'" in err and "max_iter" in err


@pytest.mark.slow
def test_benchmark_reports_ep_with_and_without_its_warm_start(tmp_path, capsys):
    """The default table has EP (its Grad-CAM warm start) and EP from the uniform start, as
    two rows with their own chunks: after one step with a tiny learning rate the uniform
    start's masks are still (nearly) flat, the warm start's are not."""
    import torch

    from lightning_extremal.config import TABLE_METHODS

    assert {"extremal_perturbation", "extremal_perturbation_uniform"} <= set(TABLE_METHODS)
    out = tmp_path / "starts"
    args = [
        "pointing", "model=demo", "methods=[ep,ep_uniform,grad_cam]", "synthetic_single=2",
        "synthetic_multi=0", "max_iter=1", "areas=[0.1]", "logger=none",
        "ep_options={lr: 1.0e-6}",
        f"output_dir={out}",
    ]  # fmt: skip
    assert _benchmark_cli(args) == 0
    printed = capsys.readouterr().out
    assert "| Extremal perturbations |" in printed
    assert "| Extremal perturbations, uniform start |" in printed
    spread = {}
    for method in ("extremal_perturbation", "extremal_perturbation_uniform"):
        (chunk,) = sorted((out / "chunks" / method).rglob("*.pt"))
        maps = torch.load(chunk, weights_only=False)["maps"]
        spread[method] = max(float(m.float().max() - m.float().min()) for m in maps)
    assert spread["extremal_perturbation_uniform"] < 0.1 < spread["extremal_perturbation"]


def test_benchmark_says_each_methods_estimate_and_rises_progress(tmp_path, capsys):
    """The estimate names every method with its work, before any chunk; RISE, minutes long
    at its 8000 masks, prints its masks done per quarter."""
    out = tmp_path / "rise"
    args = [
        "pointing", "model=tests.helpers:six_class_model", "methods=[center,rise]",
        "synthetic_single=2", "synthetic_multi=0", "synthetic_size=32", "rise_masks=200",
        "logger=none", f"output_dir={out}",
    ]  # fmt: skip
    assert _benchmark_cli(args) == 0
    lines = capsys.readouterr().out.splitlines()
    first = lines[0]
    assert first.startswith("estimate: ") and first.endswith("to shorten")
    assert "rise ~" in first or "rise <1 s" in first
    assert "(200 masks × 2 images)" in first and "center " in first and "(2 pairs)" in first
    rise = [line for line in lines if line.startswith("[rise]")]
    assert rise[0].startswith("[rise] chunk 1/1: 2 images (estimate ")
    assert rise[1:3] == ["[rise] 100/200 masks", "[rise] 200/200 masks"]
    assert rise[3].startswith("[rise] chunk 1/1: 2 pairs, ")
