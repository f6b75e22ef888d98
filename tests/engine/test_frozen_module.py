"""The caller's model comes back as it was given (engine/frozen_module, engine/classifier):
modes, requires_grad, hooks, weights, memory format — after success and after a failure."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from lightning_extremal import extremal_perturbation
from lightning_extremal.ops.frozen import hook_counts
from tests.helpers import FAST, make_tiny_classifier


class Boom(Callback):
    """Raises during training, after a few steps."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= 3:
            raise RuntimeError("boom during training")


def _mixed_model() -> torch.nn.Module:
    model = make_tiny_classifier(seed=1).train()
    model[1].eval()  # batch norm in eval
    model[5].eval()  # dropout in eval
    model[0].weight.requires_grad_(False)
    model[8].bias.requires_grad_(False)
    return model


def _snapshot(model: torch.nn.Module) -> dict:
    return {
        "training": {name: m.training for name, m in model.named_modules()},
        "grad": {name: p.requires_grad for name, p in model.named_parameters()},
        "hooks": hook_counts(model),
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "params": [id(p) for p in model.parameters()],
        "device": {p.device for p in model.parameters()},
        "strides": {name: p.stride() for name, p in model.named_parameters()},
    }


def _assert_same(model: torch.nn.Module, before: dict) -> None:
    after = _snapshot(model)
    assert after["training"] == before["training"]
    assert after["grad"] == before["grad"]
    assert after["hooks"] == before["hooks"]
    assert after["params"] == before["params"]
    assert after["device"] == before["device"]
    assert after["strides"] == before["strides"]  # memory format too (channels_last runs)
    assert after["state"].keys() == before["state"].keys()
    for key, value in before["state"].items():
        assert torch.equal(after["state"][key], value), key  # incl. batch-norm running stats
    for p in model.parameters():
        assert p.grad is None


def test_model_left_as_given(small_images) -> None:
    model = _mixed_model()
    calls = []
    model[2].register_forward_hook(lambda *args: calls.append(1))  # the caller's own hook
    before = _snapshot(model)
    assert model.training and not model[1].training and before["hooks"]["2._forward_hooks"] == 1
    result = extremal_perturbation(model, small_images[:2], [0, 1], [0.2], max_iter=5, **FAST)
    assert result.masks.shape == (2, 1, 40, 40)
    assert calls  # the caller's hook stayed active during the run
    _assert_same(model, before)


def test_model_left_as_given_when_training_fails(small_images) -> None:
    model = _mixed_model()
    before = _snapshot(model)
    with pytest.raises(RuntimeError, match="boom during training"):
        extremal_perturbation(
            model, small_images, 0, [0.2], max_iter=20, callbacks=[Boom()], **FAST
        )
    _assert_same(model, before)
    # A failure while resolving targets (inside the frozen region) restores it too.
    with pytest.raises(ValueError, match="out of range"):
        extremal_perturbation(model, small_images, 9, [0.2], max_iter=5, **FAST)
    _assert_same(model, before)


class _ViewFlatten(torch.nn.Module):
    """A convnet that flattens its feature map with ``.view``: wrong for channels-last inputs."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 2, 3, stride=4, padding=1)
        self.fc = torch.nn.Linear(2 * 10 * 10, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.fc(y.view(y.shape[0], -1))


def test_channels_last_auto_converts_only_models_that_score_the_same(small_images) -> None:
    """``channels_last="auto"`` switches a convnet to channels-last (and the run gives the
    masks of a contiguous run); a model that breaks on channels-last inputs, or one without a
    Conv2d, stays as it is; the caller's model gets its memory format back."""
    from lightning_extremal.engine.classifier import pick_channels_last

    convnet = make_tiny_classifier(seed=1)
    assert pick_channels_last(convnet, small_images, "auto")
    assert convnet[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not convnet[0].weight.is_contiguous()
    viewer = _ViewFlatten().eval()
    assert not pick_channels_last(viewer, small_images, "auto")
    assert viewer.conv.weight.is_contiguous()  # converted back
    mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 40 * 40, 4))
    assert not pick_channels_last(mlp, small_images, "auto")
    assert not pick_channels_last(convnet, small_images, False)
    with pytest.raises(RuntimeError):  # forced: the .view model fails loudly, not silently
        pick_channels_last(viewer, small_images, True)
        viewer(small_images.contiguous(memory_format=torch.channels_last))
    viewer.to(memory_format=torch.contiguous_format)

    model = make_tiny_classifier(seed=1)
    before = _snapshot(model)
    opts = dict(FAST, max_iter=3)
    plain = extremal_perturbation(
        model, small_images[:2], [0, 1], [0.2], channels_last=False, **opts
    )
    fast = extremal_perturbation(model, small_images[:2], [0, 1], [0.2], channels_last=True, **opts)
    _assert_same(model, before)
    assert (plain.masks - fast.masks).abs().max() < 1e-3
    # the .view model runs under "auto" (it just stays contiguous)
    result = extremal_perturbation(viewer, small_images[:2], 0, [0.2], **opts)
    assert torch.isfinite(result.masks).all()
