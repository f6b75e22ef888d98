"""Run folders you can trust (#13 items 1–3): results keyed by image and weight content, one
job per folder, a folder of another configuration refused unless cleared, nothing stale left
or read, a resume that says what it skips."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_extremal.config import compose
from lightning_extremal.data.transforms import read_image, resize_image
from lightning_extremal.errors import UsageError
from lightning_extremal.jobs.report.job import write_report
from lightning_extremal.jobs.run.job import run_job
from tests.helpers import (
    TinyConvNet,
    folder_run_args,
    synthetic_run_command,
    write_images,
)

ROOT = Path(__file__).resolve().parents[2]


def _run(data: Path, out: Path, *extra: str, **kw) -> Path:
    return run_job(compose(folder_run_args(data, out, *extra, **kw)))


def _mtimes(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted((out / "chunks").glob("*.pt"))}


def _masks(out: Path) -> dict:
    return torch.load(out / "masks.pt", weights_only=False)


@pytest.fixture
def images(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(ROOT)  # tests.helpers importable by the job
    data = tmp_path / "images"
    write_images(data, 2)
    return data


@pytest.mark.slow
def test_a_replaced_image_is_computed_again_and_an_unchanged_one_is_not(images, tmp_path, capsys):
    out = tmp_path / "out"
    _run(images, out)
    before, stamps = _masks(out), _mtimes(out)
    rng = np.random.default_rng(7)  # another picture under the same name and size
    Image.fromarray((rng.random((40, 52, 3)) * 255).astype("uint8")).save(images / "img1.png")
    capsys.readouterr()
    _run(images, out)
    printed = capsys.readouterr().out
    after = _mtimes(out)
    assert after["chunk-00000.pt"] == stamps["chunk-00000.pt"]  # unchanged image: reused
    assert after["chunk-00001.pt"] != stamps["chunk-00001.pt"]  # replaced image: recomputed
    assert "resuming: 1 of 2 chunks done, 1 to run" in printed
    assert "1 chunk(s) on disk were computed from other images" in printed
    masks = _masks(out)
    assert torch.equal(masks["masks"][0], before["masks"][0])
    assert not torch.equal(masks["masks"][1], before["masks"][1])
    stored = torch.load(out / "chunks" / "chunk-00001.pt", weights_only=False)["images"][0]
    assert torch.equal(stored, resize_image(read_image(images / "img1.png"), 32, True))


@pytest.mark.slow
def test_a_model_resaved_with_other_weights_is_computed_again(images, tmp_path, capsys):
    path = tmp_path / "model.pt"
    torch.save(TinyConvNet(seed=0).eval(), path)
    out = tmp_path / "out"
    _run(images, out, model=str(path))
    before, stamps = _masks(out), _mtimes(out)
    torch.save(TinyConvNet(seed=1).eval(), path)  # same file name, same config: new weights
    capsys.readouterr()
    _run(images, out, model=str(path))
    assert "2 chunk(s) on disk were computed from other images" in capsys.readouterr().out
    assert all(_mtimes(out)[n] != t for n, t in stamps.items())
    assert not torch.equal(_masks(out)["masks"], before["masks"])


@pytest.mark.slow
def test_another_configuration_is_refused_unless_overwritten(images, tmp_path, capsys):
    out = tmp_path / "out"
    _run(images, out)
    (out / "notes.txt").write_text("mine")  # not a result: never removed
    stamps, config = _mtimes(out), (out / "config.json").read_text()
    with pytest.raises(
        UsageError, match=r"another configuration \(method.max_iter: 4 → 5\).*--overwrite"
    ):
        _run(images, out, "max_iter=5")
    assert _mtimes(out) == stamps and (out / "config.json").read_text() == config  # untouched
    _run(images, out, "logger=csv")  # a setting results do not depend on: a plain resume
    assert _mtimes(out) == stamps
    run_job(compose(folder_run_args(images, out, "max_iter=5")), overwrite=True)
    assert "cleared" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["method"]["max_iter"] == 5
    assert json.loads((out / "config.json").read_text())["output_dir"] == str(out)
    assert all(_mtimes(out)[n] != t for n, t in stamps.items())
    assert not (out / "csv").exists()  # the old run's logs went with it
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_the_folder_holds_what_the_manifest_lists(images, tmp_path):
    """Fewer images on a rerun: their chunk files and overlays are removed; a foreign chunk
    file is never read by the report."""
    write_images(images, 3)
    out = tmp_path / "out"
    _run(images, out)
    assert len(list((out / "overlays").glob("*.png"))) == 3
    (images / "img1.png").unlink()
    _run(images, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True and manifest["chunks_total"] == 2
    listed = {e["file"] for e in manifest["chunks"]}
    assert {f"chunks/{p.name}" for p in (out / "chunks").glob("*.pt")} == listed
    overlays = sorted(p.name for p in (out / "overlays").glob("*.png"))
    assert overlays == ["img0.png", "img2.png"]
    (out / "chunks" / "chunk-00099.pt").write_bytes(
        (out / "chunks" / "chunk-00000.pt").read_bytes()
    )
    page = write_report(out).read_text()
    assert page.count('<section class="pair"') == 2 and "Unfinished" not in page


@pytest.mark.slow
def test_an_interrupted_run_says_so_in_its_report_and_resumes(images, tmp_path, capsys):
    Image.new("RGB", (52, 40), (90, 90, 90)).save(images / "img1.png")  # flat: unexplainable
    out = tmp_path / "out"
    with pytest.raises(UsageError, match=r"img1: the classifier's scores do not change"):
        _run(images, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is False and len(manifest["chunks"]) == 1
    page = write_report(out).read_text()
    assert "Unfinished run: 1 of 2 chunks done" in page.split('<section class="pair"')[0]
    write_images(images, 2)  # the picture back
    capsys.readouterr()
    _run(images, out)
    assert "resuming: 1 of 2 chunks done, 1 to run" in capsys.readouterr().out
    assert json.loads((out / "manifest.json").read_text())["complete"] is True


def test_a_model_with_nan_scores_stops_the_job_naming_the_images(images, tmp_path):
    with pytest.raises(UsageError, match=r"img0: the classifier's scores are not finite .* step 0"):
        _run(images, tmp_path / "out", model="tests.helpers:nan_classifier")


@pytest.mark.slow
def test_a_second_job_into_a_busy_folder_is_refused_and_the_first_finishes(tmp_path):
    """Two jobs, one folder: the second stops at once naming the first's PID, and the first's
    results are whole; the lock dies with its process (kill -9), so the next job runs."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out"
    command = synthetic_run_command(out, "max_iter=40", batch_size=1)  # 8 chunks: time to ask
    first = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    while not list((out / "chunks").glob("*.pt")) and time.time() < deadline:
        time.sleep(0.2)
    second = subprocess.run(
        [*command[:-1], f"output_dir={out}", "max_iter=8"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 2 and second.stderr.count("\n") == 1  # one line
    assert f"is in use by another lightning-extremal job (PID {first.pid})" in second.stderr
    assert first.wait(timeout=300) == 0, first.stderr.read()
    config = json.loads((out / "config.json").read_text())
    assert config["method"]["max_iter"] == 40
    assert json.loads((out / "manifest.json").read_text())["complete"] is True
    assert len(_masks(out)["ids"]) == 8

    small = synthetic_run_command(tmp_path / "k", "data.num_images=2", batch_size=1)
    killed = subprocess.Popen(
        small,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while not (tmp_path / "k" / ".lock").is_file() and time.time() < deadline + 120:
        time.sleep(0.1)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    rerun = subprocess.run(
        small,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr


@pytest.mark.slow
def test_a_run_that_failed_before_any_chunk_does_not_claim_the_folder(images, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="99"):
        _run(images, out, "data.targets=99")  # TinyConvNet has 5 classes
    _run(images, out, "data.targets=3")  # no results there: not another configuration's
    assert json.loads((out / "config.json").read_text())["data"]["targets"] == 3


def test_bad_data_or_model_fails_before_the_output_folder_is_made(images, tmp_path):
    with pytest.raises(ValueError, match="no images found"):
        _run(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(ValueError, match="cannot import model"):
        _run(images, tmp_path / "out", model="nonexistent:foo")
    assert not (tmp_path / "out").exists()
