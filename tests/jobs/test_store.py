"""Resume through the results store (jobs/store): a rerun skips finished chunks, a run killed
with ``kill -9`` and rerun equals an uninterrupted one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lightning_extremal.cli import main
from tests.helpers import TINY_MODEL
from tests.helpers import load_masks as _masks
from tests.helpers import synthetic_run_command as _cli
from tests.helpers import write_images as _write_images

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_cli_rerun_skips_finished_chunks(tmp_path, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    data = tmp_path / "images"
    _write_images(data, 2)
    out = tmp_path / "out"
    args = [
        "run",
        f"model={TINY_MODEL}",
        f"data={data}",
        "data.size=32",
        "max_iter=3",
        "logger=none",
        "data.batch_size=1",
        f"output_dir={out}",
        "trainer.progress=false",
    ]
    assert main(args) == 0
    first = (out / "chunks" / "chunk-00000.pt").stat().st_mtime_ns
    before = torch.load(out / "masks.pt", weights_only=False)["masks"]
    assert main(args) == 0
    assert (out / "chunks" / "chunk-00000.pt").stat().st_mtime_ns == first
    assert torch.equal(torch.load(out / "masks.pt", weights_only=False)["masks"], before)


@pytest.mark.slow
def test_kill_9_then_rerun_equals_uninterrupted_run(tmp_path):
    import os
    import signal
    import subprocess
    import time

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    whole = tmp_path / "whole"
    subprocess.run(_cli(whole), cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _cli(killed), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    chunks = killed / "chunks"
    deadline = time.time() + 240
    while time.time() < deadline and len(list(chunks.glob("chunk-*.pt"))) < 2:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # kill -9 mid-run: no cleanup code runs
    proc.wait()
    finished = sorted(p.name for p in chunks.glob("chunk-*.pt"))
    assert 2 <= len(finished) < 4, finished
    stamps = {p.name: p.stat().st_mtime_ns for p in chunks.glob("chunk-*.pt")}
    subprocess.run(_cli(killed), cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    # finished chunks were not redone
    assert all(chunks.joinpath(n).stat().st_mtime_ns == t for n, t in stamps.items())
    a, b = _masks(whole), _masks(killed)
    assert a["ids"] == b["ids"] and len(set(a["ids"])) == 8  # none lost, none twice
    assert torch.equal(a["masks"], b["masks"])
    manifest = __import__("json").loads((killed / "manifest.json").read_text())
    assert [e["file"] for e in manifest["chunks"]] == [f"chunks/chunk-{i:05d}.pt" for i in range(4)]
