"""What the engine needs to know about a classifier: input channels, number of classes,
predicted classes, and whether it runs faster on channels-last inputs."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ModelFailed
from ..ops.frozen import frozen


def expected_channels(model: torch.nn.Module) -> int | None:
    for module in model.modules():
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            return module.in_channels
    return None


def probe_classes(model: torch.nn.Module, images: torch.Tensor) -> int:
    """Number of classes the model outputs, checked on one image before any long work."""
    channels = expected_channels(model)
    if channels is not None and images.shape[1] != channels:
        raise ValueError(
            f"images have {images.shape[1]} channels but the model's first convolution "
            f"expects {channels}"
        )
    device = next(iter(model.parameters()), images).device
    with torch.no_grad():
        out = run_model(model, images[:1].to(device))
    if not isinstance(out, torch.Tensor) or out.dim() < 2:
        raise ValueError("the model must return class scores of shape N×classes(×…)")
    return out.shape[1]


def predicted_classes(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Top-1 class of each image, (N,)."""
    with frozen(model), torch.no_grad():
        device = next(iter(model.parameters()), images).device
        logits = run_model(model, images.to(device))
    return logits.reshape(*logits.shape[:2], -1).mean(-1).argmax(1).cpu()


def run_model(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)``, where any exception of the model's own code (a size check, a shape
    mismatch: ``AssertionError``, ``ValueError``, ``RuntimeError``…) becomes
    :class:`~lightning_extremal.errors.ModelFailed` naming the model's class, the batch shape
    and the original exception; running out of memory is not the model's fault and passes."""
    try:
        return model(x)
    except torch.OutOfMemoryError:
        raise
    except Exception as error:
        raise ModelFailed(f"the model ({type(model).__name__})", tuple(x.shape), error) from error


def pick_channels_last(classifier: nn.Module, probe: torch.Tensor, setting: bool | str) -> bool:
    """Convert ``classifier`` to channels-last memory format if ``setting`` asks for it.

    ``True`` converts; ``False`` leaves it; ``"auto"`` converts when the classifier has a
    ``Conv2d`` (where oneDNN/cuDNN run faster that way, see
    benchmarks/RESULTS.md) and gives the same scores on one channels-last image of ``probe``
    (B×C×H×W) — a model that reshapes with ``.view`` fails or differs and stays as it was.
    The caller's model gets its format back at the end (:func:`~lightning_extremal.ops.frozen.frozen`).
    """
    if setting is False or probe.dim() != 4:
        return False
    if setting is True:
        classifier.to(memory_format=torch.channels_last)
        return True
    if not any(isinstance(m, nn.Conv2d) for m in classifier.modules()):
        return False
    x = probe[:1].detach()
    with torch.no_grad():
        expected = classifier(x).float()
        try:
            classifier.to(memory_format=torch.channels_last)
            got = classifier(x.contiguous(memory_format=torch.channels_last)).float()
            same = got.shape == expected.shape and bool(
                torch.allclose(got, expected, rtol=1e-2, atol=1e-2 * float(expected.abs().max()))
            )
        except Exception:  # noqa: BLE001 - a model that cannot take channels-last inputs
            same = False
    if not same:
        classifier.to(memory_format=torch.contiguous_format)
    return same


#: Seed of the probe images a model's scores fingerprint is computed on.
PROBE_SEED = 0
#: Classes of each probe image whose scores enter the fingerprint (the highest), and the
#: significant digits kept: enough to tell changed code apart, few enough that two processes
#: (or runs) of the same model agree despite float rounding.
PROBE_CLASSES = 10
PROBE_DIGITS = 3


def scores_fingerprint(model: nn.Module, shape: tuple[int, ...]) -> str:
    """What a model computes, as text: its top :data:`PROBE_CLASSES` classes and their scores
    (:data:`PROBE_DIGITS` significant digits) on two seeded random C×H×W images — changed
    code or preprocessing with the same weights gives another text. One forward, in eval
    mode, the model handed back as it was; a failing forward is
    :class:`~lightning_extremal.errors.ModelFailed`."""
    probe = torch.rand(2, *shape, generator=torch.Generator().manual_seed(PROBE_SEED))
    first = next(iter(model.parameters()), None)
    with frozen(model), torch.no_grad():
        scores = run_model(model, probe.to(first.device if first is not None else "cpu"))
    scores = scores.float().flatten(1).cpu()
    top = scores.topk(min(PROBE_CLASSES, scores.shape[1]), dim=1)
    values = [float(f"{v:.{PROBE_DIGITS}g}") for v in top.values.flatten().tolist()]
    return repr([top.indices.tolist(), values])
