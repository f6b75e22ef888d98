"""Benchmark scripts that must stay runnable where they cannot be measured here: the GPU
throughput benchmark (#15 item 4) on the CPU, with a tiny model and image."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_throughput_benchmark_runs_on_cpu_and_prints_its_table():
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "gpu_throughput.py"),
        "--device", "cpu", "--model", "resnet18", "--side", "32",
        "--masks", "4", "--steps", "2", "3",
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("| fp32", "| bf16"))]
    assert [row.split("|")[1:3] for row in rows] == [[" fp32 ", " 4 "], [" bf16 ", " 4 "]]
    assert all(row.split("|")[5].strip() == "n/a" for row in rows)  # no CUDA memory on a CPU
