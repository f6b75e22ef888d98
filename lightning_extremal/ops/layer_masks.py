"""What a layer mask keeps and what replaces the rest: channel counts and baselines."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .perturbation import gaussian_blur


def channel_counts(areas: Sequence[float], num_channels: int) -> list[int]:
    """Channels kept at each area: a fraction ``a ∈ (0, 1)`` keeps
    ``C − ⌊(1 − a)·C⌋`` channels (the count :func:`~.area.ones_count` gives), an
    integral ``a ≥ 1`` is itself a count. Raises ``ValueError`` for a count above ``C``.
    """
    counts = []
    for a in areas:
        if a >= 1:
            if not float(a).is_integer() or a > num_channels:
                raise ValueError(
                    f"area {a!r} is a channel count but the layer has {num_channels} channels; "
                    f"give a fraction in (0, 1) or an integer in [1, {num_channels}]"
                )
            counts.append(int(a))
        else:
            counts.append(num_channels - math.floor(num_channels * (1 - a)))
    return counts


def channel_baseline(activation: torch.Tensor, kind: str) -> torch.Tensor:
    """What a removed channel becomes: ``zero`` (N×C×1…) or its spatial ``mean`` (N×C×1×1…)."""
    spatial = tuple(range(2, activation.dim()))
    if kind == "zero":
        return activation.new_zeros(*activation.shape[:2], *([1] * len(spatial)))
    if kind == "mean":
        if not spatial:
            raise ValueError(
                "channel_baseline='mean' needs a spatial activation (N×C×H×W); this layer "
                f"gives {tuple(activation.shape)}, use channel_baseline='zero'"
            )
        return activation.mean(dim=spatial, keepdim=True)
    raise ValueError(f"channel_baseline must be one of ['zero', 'mean']; got {kind!r}")


def space_baseline(activation: torch.Tensor, kind: str, blur_sigma: float) -> torch.Tensor:
    """What a removed layer cell becomes: ``zero``, the channel's spatial ``mean`` or the
    ``blur``-red activation ``g_σ * Φ`` (σ in layer cells, reflect padding). N×C×(H×W|1×1)."""
    if kind == "zero":
        return activation.new_zeros(*activation.shape[:2], 1, 1)
    if kind == "mean":
        return activation.mean(dim=(2, 3), keepdim=True)
    if kind == "blur":
        return gaussian_blur(activation, blur_sigma, "reflect")
    raise ValueError(f"space_baseline must be one of ['zero', 'mean', 'blur']; got {kind!r}")
