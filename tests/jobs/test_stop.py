"""SIGTERM/SIGINT stop a run at the next step boundary (#24 item 5): the process ends within
seconds with one line and 128 + the signal, the interrupted chunk is not kept, the finished
ones are (manifest ``complete: false``), and rerunning the same command resumes and finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import load_masks, synthetic_run_command

ROOT = Path(__file__).resolve().parents[2]


def slow_run(out: Path) -> list[str]:
    """``python -m lightning_extremal run`` of 4 chunks of 2 images, 20 steps of ~30 ms (and a
    Grad-CAM warm start) each: seconds a chunk, time to signal in the middle of the second."""
    command = synthetic_run_command(out, "max_iter=20", batch_size=2)[1:]
    command[command.index("model=tests.helpers:TinyConvNet")] = (
        "model=tests.helpers:SlowTinyConvNet"
    )
    return [sys.executable, "-m", "lightning_extremal", *command]


def finished_chunks(out: Path) -> int:
    try:
        return len(json.loads((out / "manifest.json").read_text())["chunks"])
    except (OSError, ValueError):
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_at_a_step_and_the_rerun_resumes(tmp_path, signum):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        slow_run(out), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 240
    while time.time() < deadline and finished_chunks(out) < 1 and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)  # the second chunk's fit is running
    sent = time.time()
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert time.time() - sent < 10, "the step boundary came late"
    assert proc.returncode == 128 + signum, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"lightning-extremal: stopped by {signal.Signals(signum).name} at a step"
    )
    assert "rerun the same command to resume" in last and "Traceback" not in stderr
    manifest = json.loads((out / "manifest.json").read_text())
    kept = len(manifest["chunks"])
    assert manifest["complete"] is False and 1 <= kept < 4
    assert len(list((out / "chunks").glob("chunk-*.pt"))) == kept  # the interrupted one: none
    if signum == signal.SIGINT:
        return  # resuming is the same after either signal: checked once
    rerun = subprocess.run(
        slow_run(out), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming: {kept} of 4 chunks done" in rerun.stdout
    assert json.loads((out / "manifest.json").read_text())["complete"] is True
    ids = load_masks(out)["ids"]
    assert len(ids) == 8 and len(set(ids)) == 8


def test_the_previous_handlers_are_back_after_a_job():
    from lightning_extremal.engine.stopping import stop_on_signals

    def mine(signum, frame):
        return None

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGTERM) is not mine
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)
