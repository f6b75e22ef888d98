"""`lightning-extremal run` end to end (jobs/run, jobs/image_run): every output file, VOC/COCO
roots, chunk-size invariance, memory that does not grow from chunk to chunk."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_extremal.cli import main
from tests.helpers import TINY_MODEL
from tests.helpers import load_masks as _masks
from tests.helpers import synthetic_run_command as _cli
from tests.helpers import write_images as _write_images

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_cli_main_job_writes_every_file(tmp_path, monkeypatch, capsys):
    """A folder with 3 good images and 1 unreadable one, 2 areas, a tiny classifier."""
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    data = tmp_path / "images"
    _write_images(data, 3)
    (data / "broken.jpg").write_bytes(b"this is not a jpeg")
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="broken.jpg"):
        code = main(
            [
                "run",
                f"model={TINY_MODEL}",
                f"data={data}",
                "data.size=32",
                "areas=[0.1,0.3]",
                "max_iter=4",
                "logger=csv",
                "data.batch_size=2",
                f"output_dir={out}",
                "trainer.progress=false",
                "data.targets=[1,2]",
            ]
        )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["results"]
    # 3 images × 2 targets × 2 areas
    assert len(rows) == 12
    assert {r["image"] for r in rows} == {"img0", "img1", "img2"}
    assert {r["target"] for r in rows} == {1, 2}
    assert {r["area"] for r in rows} == {0.1, 0.3}
    assert all(0 <= r["achieved_area"] <= 1 and np.isfinite(r["reward"]) for r in rows)
    assert [s["path"].endswith("broken.jpg") for s in summary["skipped"]] == [True]
    masks = torch.load(out / "masks.pt", weights_only=False)
    assert masks["masks"].shape == (6, 2, 32, 32)
    assert masks["ids"] == ["img0", "img0", "img1", "img1", "img2", "img2"]
    assert 0 <= masks["masks"].min() and masks["masks"].max() <= 1
    overlays = sorted(p.name for p in (out / "overlays").iterdir())
    assert overlays == [f"img{i}_{t}.png" for i in range(3) for t in (1, 2)]
    with Image.open(out / "overlays" / "img0_1.png") as png:
        assert png.size[0] > png.size[1] > 100  # image + 2 heat maps side by side
        assert np.asarray(png.convert("L")).std() > 0
    assert sorted(p.name for p in (out / "chunks").iterdir()) == [
        "chunk-00000.pt",
        "chunk-00001.pt",
    ]
    assert json.loads((out / "config.json").read_text())["method"]["max_iter"] == 4
    assert (out / "csv").is_dir()  # the CSV logger wrote its metrics
    # 4 steps: not converged (too few for a reward to stall), and said so — per row, in the
    # summary and on the console.
    failed = [r for r in rows if not r["converged"]]
    assert len(failed) == 12, "4 steps cannot converge"
    convergence = summary["convergence"]
    assert convergence["masks"] == 12 and convergence["converged"] == 12 - len(failed)
    assert len(convergence["not_converged"]) == len(failed)
    assert convergence["not_converged"][0].startswith(f"{failed[0]['image']} ")
    console = capsys.readouterr()
    assert f"masks converged: {12 - len(failed)}/12" in console.out
    assert "pictures: " in console.out and "overlays/" in console.out
    assert f"warning: {len(failed)} of 12 masks did not converge" in console.err


@pytest.mark.slow
def test_synthetic_source_quality_and_chunk_memory(tmp_path):
    """Chunks of 2 and of 8 images give the same masks; the synthetic set is scored."""
    import json
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    small, large = tmp_path / "b2", tmp_path / "b8"
    steps = "max_iter=5"  # chunk-dependence shows from the first step
    run = dict(cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    subprocess.run(_cli(small, steps), **run)
    subprocess.run(_cli(large, steps, batch_size=8), **run)
    assert torch.allclose(_masks(small)["masks"], _masks(large)["masks"], atol=1e-5)
    summary = json.loads((small / "summary.json").read_text())
    assert summary["quality"]["pairs"] == 8  # every synthetic image has ground truth
    assert 0 <= summary["quality"]["pointing"] <= 1


def _run_dataset(out, model: str, *args: str) -> dict:
    import json

    from lightning_extremal.cli import main

    code = main(
        [
            "run",
            f"model={model}",
            *args,
            "data.size=48",
            "areas=[0.1,0.3]",
            "max_iter=3",
            "step=4",
            "sigma=8",
            "logger=none",
            "trainer.progress=false",
            "logger.final_table=false",
            f"output_dir={out}",
        ]
    )
    assert code == 0
    return json.loads((out / "summary.json").read_text())


@pytest.mark.slow
def test_run_over_local_voc07_and_coco14_roots(tmp_path, monkeypatch):
    """`data=voc07|coco14 data.root=…` explains every scored class of every image (VOC: the
    all-difficult class is skipped), with the annotations as ground truth, and resumes."""
    from tests.helpers import make_fake_coco, make_fake_voc

    monkeypatch.chdir(ROOT)
    make_fake_voc(tmp_path / "voc")
    voc = (
        "tests.helpers:twenty_class_model",
        "data=voc07",
        f"data.root={tmp_path / 'voc'}",
    )
    summary = _run_dataset(tmp_path / "out_voc", *voc)
    pairs = sorted({(r["image"], r["target"]) for r in summary["results"]})
    assert pairs == [("000001", 7), ("000001", 11), ("000002", 11)]  # cat, dog; dog
    assert summary["quality"]["pairs"] == 3  # every pair scored against its boxes
    assert len(summary["results"]) == 3 * 2
    stamp = (tmp_path / "out_voc" / "chunks" / "chunk-00000.pt").stat().st_mtime_ns
    _run_dataset(tmp_path / "out_voc", *voc)  # the rerun skips the finished chunk
    assert (tmp_path / "out_voc" / "chunks" / "chunk-00000.pt").stat().st_mtime_ns == stamp

    make_fake_coco(tmp_path / "coco")
    summary = _run_dataset(
        tmp_path / "out_coco",
        "tests.helpers:six_class_model",
        "data=coco14",
        f"data.root={tmp_path / 'coco'}",
    )
    pairs = sorted({(r["image"], r["target"]) for r in summary["results"]})
    assert pairs == [
        ("COCO_val2014_000000000001", 0),  # person
        ("COCO_val2014_000000000001", 2),  # kite
        ("COCO_val2014_000000000002", 1),  # car; image 3 has no annotations: left out
    ]


def _live_tensor_mib() -> float:
    """MiB of the distinct storages of every tensor the garbage collector can see."""
    import gc

    gc.collect()
    storages = {}
    with warnings.catch_warnings():  # isinstance on torch.distributed's deprecated reduce_op
        warnings.simplefilter("ignore", FutureWarning)
        tensors = [o for o in gc.get_objects() if isinstance(o, torch.Tensor)]
    for obj in tensors:
        if obj.device.type == "cpu":
            try:
                storage = obj.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes()
            except RuntimeError:  # fake tensors left by torch.compile have no storage
                continue
    return sum(storages.values()) / 2**20


@pytest.mark.slow
def test_memory_does_not_grow_from_chunk_to_chunk(tmp_path, monkeypatch):
    """The tensors alive after each of 10 chunks take the same memory once the first chunk
    has warmed up (chunks are streamed: nothing of a finished chunk is kept but its summary
    rows). Counted from the live tensors, not the process size, which the allocator makes
    jump by ±20 MiB either way."""
    from lightning_extremal.cli import main
    from lightning_extremal.jobs.run import image_job as run_module

    live: list[float] = []
    write = run_module.write_overlays

    def spy(*args, **kwargs):
        write(*args, **kwargs)
        live.append(_live_tensor_mib())

    monkeypatch.setattr(run_module, "write_overlays", spy)
    monkeypatch.chdir(ROOT)
    args = _cli(tmp_path / "out", "data.num_images=20", "data.size=48", "max_iter=3")[1:]
    assert main(args) == 0
    assert len(live) == 10
    # One chunk's pyramid alone is 8 levels × 2 images × 3 × 48² floats = 0.42 MiB.
    assert max(live[1:]) - live[1] < 0.1, [round(m, 2) for m in live]
