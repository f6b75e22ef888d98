"""What a run's console says while it works and when it ends: chunks labelled ``chunk k/n``
with a job ETA, the warm start as a phase of its own, inversions named as such, and a
deliberately short run reported as not converged."""

from __future__ import annotations

import json
import re

from tests.helpers import TINY_MODEL, run_args, run_job_on_one_thread


def _lines(err: str) -> list[str]:
    """Every state the console showed: bar redraws (``\\r``) and lines, stripped."""
    return [s.strip() for s in err.replace("\r", "\n").splitlines() if s.strip()]


def test_two_chunk_run_labels_its_chunks_its_warm_start_and_its_short_fit(shapes, tmp_path, capsys):
    """2 images in chunks of 1, 3 steps, Grad-CAM warm start, ground truth: the bars and
    lines name the chunk; the second carries the job ETA; the warm start has its own line
    before step 1. Converged on a deliberately short run: 3 steps cannot show a stalled
    reward, so no mask converged, and the pointing line says so."""
    out = tmp_path / "run"
    # step 4, σ 8: the warm start lands within 0.05 of both areas (0.114, 0.346, 0.133,
    # 0.312 for 0.1, 0.3), which the former absolute tolerance called 4/4 converged.
    short = ("max_iter=3", "step=4", "sigma=8", "logger=none", "data.batch_size=1")
    args = run_args(shapes, out, *short)
    run_job_on_one_thread([*args, "trainer.progress=true"])
    captured = capsys.readouterr()
    states = _lines(captured.err)
    warm = [s for s in states if re.fullmatch(r"chunk 1/2: warm start \(grad_cam:\S+\): .*", s)]
    assert len(warm) == 1, states
    assert re.fullmatch(
        r"chunk 1/2: warm start \(grad_cam:features\): 50 steps in [\d.]+s "
        r"\([\d.]+s before step 1\)",
        warm[0],
    )
    assert any(s.startswith("chunk 1/2: warm start of 2 masks:") for s in states)  # its bar
    # The step bar and its final line: labelled by chunk, the second with the job's ETA.
    assert any(
        re.fullmatch(r"chunk 1/2: 2 masks: 3 steps in [\d.]+s, reward=.*", s) for s in states
    )
    assert any(
        re.fullmatch(r"chunk 2/2 · job ETA \d+ s: 2 masks: 3 steps in [\d.]+s, reward=.*", s)
        for s in states
    ), states
    assert any(re.fullmatch(r"lightning-extremal: chunk 1/2 done in [\d.]+s · job ETA \d+ s", s)
               for s in states)  # fmt: skip
    assert any(re.fullmatch(r"lightning-extremal: chunk 2/2 done in [\d.]+s", s) for s in states)
    assert not any(re.match(r"\d+ masks", s) for s in states)  # no unlabelled bar
    # Converged on a deliberately short run: none of the 4 masks.
    convergence = json.loads((out / "summary.json").read_text())["convergence"]
    assert (convergence["masks"], convergence["converged"]) == (4, 0)
    assert len(convergence["not_converged"]) == 4
    assert "masks converged: 0/4 (area within max(0.2·area" in captured.out
    assert "(4 of 4 masks not converged)" in captured.out  # beside the pointing figures


def test_inversion_run_is_labelled_as_inversions(tmp_path, capsys, monkeypatch, shapes):
    images, _ = shapes
    out = tmp_path / "invert"
    run_job_on_one_thread(
        [
            f"model={TINY_MODEL}",
            f"data={images}",
            "data.size=32",
            "data.batch_size=1",
            "method=invert",
            "layer=features.0",
            "invert_iter=3",
            "logger=none",
            f"output_dir={out}",
        ]
    )
    states = _lines(capsys.readouterr().err)
    assert any(
        re.fullmatch(r"chunk 1/2: inversion of 1 image: 3 steps in [\d.]+s", s) for s in states
    )
    assert any(s.startswith("chunk 2/2 · job ETA") and "inversion of 1 image" in s for s in states)
    assert not any("masks" in s for s in states), states
