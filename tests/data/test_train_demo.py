"""The demo's training script and image export (data/train_demo)."""

from __future__ import annotations

import pytest
import torch

from lightning_extremal.data import train_demo
from lightning_extremal.data.demo import DemoNet, demo_images, demo_index, load_demo_classifier


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*")  # Lightning-internal deprecation
def test_training_script_smoke(tmp_path) -> None:
    out = tmp_path / "tiny.pt"
    threads = torch.get_num_threads()
    try:
        train_demo.main(
            ["--out", str(out), "--train-size", "64", "--test-size", "32", "--epochs", "1"]
            + ["--processes", "1", "--threads", "1"]
        )
    finally:
        torch.set_num_threads(threads)
    checkpoint = torch.load(out, weights_only=True)
    assert 0.0 <= checkpoint["test_accuracy"] <= 1.0
    assert checkpoint["command"].startswith("python -m lightning_extremal.data.train_demo --out")
    assert isinstance(load_demo_classifier(out), DemoNet)


def test_training_script_rejects_shared_seeds() -> None:
    with pytest.raises(SystemExit):
        train_demo.parse_args(["--seed", "3", "--test-seed", "3"])


def test_export_reproduces_shipped_demo_images(tmp_path) -> None:
    entries = train_demo.export_demo_images(tmp_path)
    assert entries == demo_index()
    images, ids, _ = demo_images(tmp_path)
    assert torch.equal(images, demo_images()[0]) and ids == demo_images()[1]
