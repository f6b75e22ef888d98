"""Scale: checkpoint/resume, DDP on CPU (gloo), mixed precision, chunking invariance."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from lightning_extremal import extremal_perturbation
from tests.tiny_models import TinyConvNet

OPTIONS = dict(areas=[0.1, 0.3], max_iter=20, progress=False, step=4, sigma=8, accelerator="cpu")


@pytest.fixture(scope="module")
def problem():
    torch.manual_seed(0)
    return TinyConvNet(), torch.rand(3, 3, 40, 40), [0, 1, 2]


@pytest.fixture(scope="module")
def reference(problem):
    model, images, targets = problem
    return extremal_perturbation(model, images, targets, **OPTIONS)


class CrashAt(Callback):
    """Simulates a crash at the end of a given step."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.step:
            raise RuntimeError("simulated crash")


def test_checkpoint_resume_equals_uninterrupted(problem, reference, tmp_path):
    model, images, targets = problem
    checkpoint = ModelCheckpoint(
        dirpath=tmp_path, every_n_epochs=5, save_top_k=-1, filename="{epoch}"
    )
    with pytest.raises(RuntimeError, match="simulated crash"):
        extremal_perturbation(
            model, images, targets, callbacks=[checkpoint, CrashAt(12)], **OPTIONS
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch=4.ckpt", "epoch=9.ckpt"]
    state = torch.load(tmp_path / "epoch=9.ckpt", weights_only=False)["state_dict"]
    assert not any(k.startswith("classifier.") for k in state)  # masks only, not the model
    resumed = extremal_perturbation(
        model, images, targets, ckpt_path=str(tmp_path / "epoch=9.ckpt"), **OPTIONS
    )
    assert torch.equal(resumed.masks, reference.masks)
    assert torch.equal(resumed.history["reward"], reference.history["reward"])


def test_chunking_invariance(problem, reference):
    model, images, targets = problem
    chunked = extremal_perturbation(model, images, targets, batch_size=2, **OPTIONS)
    # Same maths per mask; only the classifier's batched kernels may round differently.
    assert torch.allclose(chunked.masks, reference.masks, atol=1e-5)
    assert torch.equal(chunked.image_index, reference.image_index)


def test_bf16_mixed_precision_finite_and_close(problem, reference):
    model, images, targets = problem
    result = extremal_perturbation(model, images, targets, precision="bf16-mixed", **OPTIONS)
    assert torch.isfinite(result.masks).all() and torch.isfinite(result.rewards).all()
    assert result.masks.dtype == torch.float32  # mask maths stays fp32
    assert (result.masks - reference.masks).abs().mean() < 0.05


@pytest.mark.slow
def test_ddp_two_processes_equals_single_device(problem, reference):
    model, images, targets = problem
    result = extremal_perturbation(
        model, images, targets, devices=2, strategy="ddp_spawn", **OPTIONS
    )
    assert (result.masks - reference.masks).abs().max() <= 1e-4
    assert (result.history["reward"] - reference.history["reward"]).abs().max() <= 1e-4
    assert (result.rewards - reference.rewards).abs().max() <= 1e-4


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _cli(out, *extra, batch_size=2):
    import sys

    exe = __import__("pathlib").Path(sys.executable).with_name("lightning-extremal")
    return [
        str(exe),
        "run",
        "model=tests.tiny_models:TinyConvNet",
        "data=synthetic",
        "data.num_images=8",
        "data.size=32",
        f"data.batch_size={batch_size}",
        "max_iter=15",
        "areas=[0.1,0.3]",
        "logger=none",
        "trainer.progress=false",
        "step=4",
        "sigma=8",
        "trainer.accelerator=cpu",
        f"output_dir={out}",
        *extra,
    ]


def _masks(out):
    return torch.load(out / "masks.pt", weights_only=False)


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


@pytest.mark.slow
def test_synthetic_source_quality_and_chunk_memory(tmp_path):
    """Chunks of 2 and of 8 images give the same masks; the synthetic set is scored."""
    import json
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    small, large = tmp_path / "b2", tmp_path / "b8"
    subprocess.run(_cli(small), cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    subprocess.run(
        _cli(large, batch_size=8), cwd=ROOT, env=env, check=True, capture_output=True, timeout=300
    )
    assert torch.allclose(_masks(small)["masks"], _masks(large)["masks"], atol=1e-5)
    summary = json.loads((small / "summary.json").read_text())
    assert summary["quality"]["pairs"] == 8  # every synthetic image has ground truth
    assert 0 <= summary["quality"]["pointing"] <= 1


@pytest.mark.slow
def test_compiled_mask_generator_matches_eager():
    """The fused kernels (smooth max, pyramid blend) compute the same values and gradients as
    the eager ones (float32 rounding only). End-to-end runs are compared after one step: the optimisation amplifies 1e-6
    differences (the level index ⌊m·(L−1)⌋ and the area ranks are discontinuous), so two
    implementations agree bitwise only on identical kernels, as batching and DDP do here."""
    from lightning_extremal.ops.masks import maxconv_kernel, param_grid_shape, smooth_max_mask

    torch.manual_seed(0)
    kernel = maxconv_kernel(4, 8.0)
    params = torch.rand(6, 1, *param_grid_shape(40, 40, 4), requires_grad=True)
    weights = torch.rand(6, 1, 56, 56)
    try:
        fused = smooth_max_mask(params, kernel, (40, 40), 20.0, 8, compiled=True)
        (fused_grad,) = torch.autograd.grad((fused * weights).sum(), params)
    except Exception as error:  # noqa: BLE001 - no C++ toolchain: compile unavailable here
        pytest.skip(f"torch.compile unavailable: {error}")
    eager = smooth_max_mask(params, kernel, (40, 40), 20.0, 8)
    (eager_grad,) = torch.autograd.grad((eager * weights).sum(), params)
    assert (fused - eager).abs().max() <= 1e-5
    assert (fused_grad - eager_grad).abs().max() <= 1e-5 * eager_grad.abs().max()
    # Non-square, not a multiple of the step, margin wider than a cell: the layout and the crop.
    kernel = maxconv_kernel(3, 5.0)
    params = torch.rand(2, 1, *param_grid_shape(29, 37, 3), requires_grad=True)
    fused = smooth_max_mask(params, kernel, (29, 37), 20.0, 7, compiled=True)
    eager = smooth_max_mask(params, kernel, (29, 37), 20.0, 7)
    assert fused.shape == eager.shape == (2, 1, 43, 51)
    weights = torch.rand_like(eager)
    (fused_grad,) = torch.autograd.grad((fused * weights).sum(), params)
    (eager_grad,) = torch.autograd.grad((eager * weights).sum(), params)
    assert (fused - eager).abs().max() <= 1e-5
    assert (fused_grad - eager_grad).abs().max() <= 1e-5 * eager_grad.abs().max()
    from lightning_extremal.ops.perturbation import (
        apply_pyramid,
        compiled_apply_pyramid,
        perturbation_pyramid,
    )

    pyramid = perturbation_pyramid(torch.rand(2, 3, 40, 40), "blur", 8, 5.0)
    masks = torch.rand(4, 1, 40, 40, requires_grad=True)
    index = torch.tensor([0, 0, 1, 1])
    blend_weights = torch.rand(4, 3, 40, 40)
    fused = compiled_apply_pyramid(pyramid, masks, index)
    (fused_grad,) = torch.autograd.grad((fused * blend_weights).sum(), masks)
    eager = apply_pyramid(pyramid, masks, index)
    (eager_grad,) = torch.autograd.grad((eager * blend_weights).sum(), masks)
    assert (fused - eager).abs().max() <= 1e-6
    assert (fused_grad - eager_grad).abs().max() <= 1e-5 * eager_grad.abs().max()
    model, images = TinyConvNet(), torch.rand(3, 3, 40, 40)
    one_step = {**OPTIONS, "max_iter": 1}
    a = extremal_perturbation(model, images, [0, 1, 2], **one_step)
    b = extremal_perturbation(model, images, [0, 1, 2], compile=True, **one_step)
    assert (a.masks - b.masks).abs().max() <= 5e-3


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


def test_run_over_local_voc07_and_coco14_roots(tmp_path, monkeypatch):
    """`data=voc07|coco14 data.root=…` explains every scored class of every image (VOC: the
    all-difficult class is skipped), with the annotations as ground truth, and resumes."""
    from tests.test_evaluation import make_fake_coco, make_fake_voc

    monkeypatch.chdir(ROOT)
    make_fake_voc(tmp_path / "voc")
    voc = (
        "tests.test_evaluation:twenty_class_model",
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
        "tests.test_evaluation:six_class_model",
        "data=coco14",
        f"data.root={tmp_path / 'coco'}",
    )
    pairs = sorted({(r["image"], r["target"]) for r in summary["results"]})
    assert pairs == [
        ("COCO_val2014_000000000001", 0),  # person
        ("COCO_val2014_000000000001", 2),  # kite
        ("COCO_val2014_000000000002", 1),  # car; image 3 has no annotations: left out
    ]


def test_dataset_root_is_required():
    from lightning_extremal.data.sources import open_source

    with pytest.raises(ValueError, match="data.root"):
        open_source("voc07", 64)


def _live_tensor_mib() -> float:
    """MiB of the distinct storages of every tensor the garbage collector can see."""
    import gc

    gc.collect()
    storages = {}
    for obj in gc.get_objects():
        if isinstance(obj, torch.Tensor) and obj.device.type == "cpu":
            try:
                storage = obj.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes()
            except RuntimeError:  # fake tensors left by torch.compile have no storage
                continue
    return sum(storages.values()) / 2**20


def test_memory_does_not_grow_from_chunk_to_chunk(tmp_path, monkeypatch):
    """The tensors alive after each of 16 chunks take the same memory once the first chunk
    has warmed up (chunks are streamed: nothing of a finished chunk is kept but its summary
    rows). Counted from the live tensors, not the process size, which the allocator makes
    jump by ±20 MiB either way."""
    from lightning_extremal.cli import main
    from lightning_extremal.jobs import image_run as run_module

    live: list[float] = []
    write = run_module.write_overlays

    def spy(*args, **kwargs):
        write(*args, **kwargs)
        live.append(_live_tensor_mib())

    monkeypatch.setattr(run_module, "write_overlays", spy)
    monkeypatch.chdir(ROOT)
    args = _cli(tmp_path / "out", "data.num_images=32", "data.size=64", "max_iter=3")[1:]
    assert main(args) == 0
    assert len(live) == 16
    # One chunk's pyramid alone is 8 levels × 2 images × 3 × 64² floats = 0.75 MiB.
    assert max(live[1:]) - live[1] < 0.1, [round(m, 2) for m in live]


@pytest.mark.slow
def test_compiled_kernels_do_not_recompile_for_every_image_size():
    """Images of many sizes (VOC/COCO widths differ) compile the smooth max at most twice —
    static, then dynamic — instead of once per size until dynamo's recompile limit."""
    from torch._dynamo.utils import counters

    from lightning_extremal.ops.masks import maxconv_kernel, param_grid_shape, smooth_max_mask

    kernel = maxconv_kernel(4, 8.0)

    def run(width: int) -> int:
        params = torch.rand(2, 1, *param_grid_shape(24, width, 4), requires_grad=True)
        try:
            smooth_max_mask(params, kernel, (24, width), 20.0, 8, compiled=True).sum().backward()
        except Exception as error:  # noqa: BLE001 - no C++ toolchain: compile unavailable here
            pytest.skip(f"torch.compile unavailable: {error}")
        return counters["stats"].get("unique_graphs", 0)

    run(29)
    run(31)  # a second size: the dynamic recompile
    settled = run(33)
    for width in (35, 38, 41, 44, 47, 50, 53, 56, 59):  # more sizes than the recompile limit
        assert run(width) == settled
