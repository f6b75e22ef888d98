"""A normal (non-editable) install ships the callbacks, the YAML configs and the assets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import lightning_extremal, lightning_extremal.callbacks as cb
from lightning_extremal.config import compose, configs_dir
from pathlib import Path
assert Path(lightning_extremal.__file__).parent.parent == Path({target!r}), lightning_extremal.__file__
assert cb.StepProgressBar is not None
assert compose(["preset=quick", "model=resnet50", "logger=csv"]).method.max_iter == 50
assert (configs_dir() / "default.yaml").is_file()
from lightning_extremal.data.demo import load_demo_classifier
load_demo_classifier()
print("ok")
"""


@pytest.mark.slow
def test_wheel_install_has_callbacks_configs_and_assets(tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    proc = subprocess.run(
        [sys.executable, "-c", CHECK.format(target=str(target))],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
