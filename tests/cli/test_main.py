"""The command line (cli/main): errors, and the installed console script's default demo run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_extremal.cli import main


def test_cli_bad_key_exits_2_naming_valid_keys(capsys):
    assert main(["run", "sigmaa=3"]) == 2
    err = capsys.readouterr().err
    assert "sigmaa" in err and "method.sigma" in err


def test_cli_unknown_command(capsys):
    assert main(["explain"]) == 2
    assert "unknown command" in capsys.readouterr().err


@pytest.mark.slow
def test_console_script_default_demo_run(tmp_path):
    """`lightning-extremal run` with the demo model and images, as installed."""
    exe = Path(sys.executable).with_name("lightning-extremal")
    out = tmp_path / "demo"
    proc = subprocess.run(
        [
            str(exe),
            "run",
            "max_iter=3",
            "logger=none",
            f"output_dir={out}",
            "trainer.progress=false",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert str(out.resolve()) in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    from lightning_extremal.data.demo import demo_images

    _, ids, _ = demo_images()
    assert {r["image"] for r in summary["results"]} == set(ids)
    assert len(list((out / "overlays").glob("*.png"))) == len(ids)
