"""The trainer (engine/trainer): checkpoint/resume, chunking invariance, mixed precision, DDP on
CPU (gloo)."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from lightning_extremal import extremal_perturbation
from tests.helpers import SCALE_OPTIONS as OPTIONS
from tests.helpers import TinyConvNet


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


@pytest.mark.slow
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
    assert resumed.start == reference.start == "grad_cam:features"  # kept by the checkpoint


@pytest.mark.slow
def test_chunking_invariance(problem, reference):
    model, images, targets = problem
    chunked = extremal_perturbation(model, images, targets, batch_size=2, **OPTIONS)
    # Same maths per mask; only the classifier's batched kernels may round differently.
    assert torch.allclose(chunked.masks, reference.masks, atol=1e-5)
    assert torch.equal(chunked.image_index, reference.image_index)


@pytest.mark.slow
def test_bf16_mixed_precision_finite_and_close(problem, reference):
    model, images, targets = problem
    result = extremal_perturbation(model, images, targets, precision="bf16-mixed", **OPTIONS)
    assert torch.isfinite(result.masks).all() and torch.isfinite(result.rewards).all()
    assert result.masks.dtype == torch.float32  # mask maths stays fp32
    assert (result.masks - reference.masks).abs().mean() < 0.05


@pytest.mark.slow
@pytest.mark.xdist_group("process_groups")  # never beside another test that opens one
def test_ddp_two_processes_equals_single_device(problem, reference):
    model, images, targets = problem
    result = extremal_perturbation(
        model, images, targets, devices=2, strategy="ddp_spawn", **OPTIONS
    )
    assert (result.masks - reference.masks).abs().max() <= 1e-4
    assert (result.history["reward"] - reference.history["reward"]).abs().max() <= 1e-4
    assert (result.rewards - reference.rewards).abs().max() <= 1e-4
