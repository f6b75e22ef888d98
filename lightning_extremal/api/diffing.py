"""Activation diffing: what the channels that channel attribution keeps encode, shown by
feature inversion, and which attributed channels two images share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..engine.classifier import predicted_classes, probe_classes
from ..engine.inputs import check_images, resolve_targets
from ..ops.layer_layout import resolve_layout
from ..ops.layer_masks import channel_baseline, channel_counts
from ..ops.layers import get_layer, layer_activation
from .extremal import extremal_perturbation
from .inversion import feature_inversion


@dataclass
class ChannelComparison:
    """The attributed channels of images ``first`` and ``second``: ``shared`` by both, and
    ``only_first``/``only_second``; ``first_only``/``second_only`` are C×H×W inversions of each
    image's activation restricted to its own differing channels (None when there are none)."""

    first: int
    second: int
    shared: list[int]
    only_first: list[int]
    only_second: list[int]
    first_only: torch.Tensor | None
    second_only: torch.Tensor | None

    @property
    def empty(self) -> bool:
        """True when both images attribute the same channels."""
        return not self.only_first and not self.only_second


@dataclass
class ActivationDiff:
    """Activation diffing at ``layer`` for N images.

    ``channel_masks`` N×C (the channel attribution at ``area``); ``top_channels`` per image
    its attributed channels, by mask value (ties: lower id); ``full`` and ``attributed`` N×C×H×W
    inversions of the full activation and of the activation with only the attributed
    channels (the others at the baseline); ``difference`` = ``full − attributed``;
    ``comparisons`` one :class:`ChannelComparison` per compared pair; ``targets`` (N,).
    """

    layer: str
    area: float
    channel_masks: torch.Tensor
    top_channels: list[list[int]]
    full: torch.Tensor
    attributed: torch.Tensor
    difference: torch.Tensor
    comparisons: list[ChannelComparison]
    targets: torch.Tensor


def top_channels(mask: torch.Tensor, count: int) -> list[int]:
    """The ``count`` channels with the largest mask values, largest first (ties: lower id)."""
    order = torch.sort(mask.detach().float().cpu(), descending=True, stable=True).indices
    return order[:count].tolist()


def restrict_channels(
    activation: torch.Tensor, channels: Sequence[int], baseline: torch.Tensor
) -> torch.Tensor:
    """``Φ`` with only ``channels`` kept, the others at ``baseline``: C×… , C×1… → C×…."""
    keep = torch.zeros(activation.shape[0], dtype=torch.bool, device=activation.device)
    keep[list(channels)] = True
    keep = keep.view(-1, *([1] * (activation.dim() - 1)))
    return torch.where(keep, activation, baseline.expand_as(activation))


def compare_channels(first: Sequence[int], second: Sequence[int]) -> tuple[list, list, list]:
    """(shared, only in first, only in second), each sorted by channel id."""
    a, b = set(first), set(second)
    return sorted(a & b), sorted(a - b), sorted(b - a)


def consecutive_pairs(count: int) -> list[tuple[int, int]]:
    """``(0, 1), (1, 2), …``: the default pairs to compare."""
    return [(i, i + 1) for i in range(count - 1)]


def activation_diff(
    model: nn.Module,
    layer: str,
    images: torch.Tensor,
    targets: Any = None,
    *,
    area: float = 0.1,
    pairs: Sequence[tuple[int, int]] | None = None,
    channel_masks: torch.Tensor | None = None,
    baseline: str = "zero",
    seed: int = 0,
    progress: bool = True,
    attribution: dict[str, Any] | None = None,
    inversion: dict[str, Any] | None = None,
    layer_layout: str = "auto",
    layer_grid: Sequence[int] | None = None,
    layer_extra_tokens: int | None = None,
) -> ActivationDiff:
    """Activation diffing of ``images`` (N×C×H×W) at ``layer``.

    Channel attribution (:func:`~lightning_extremal.api.extremal.extremal_perturbation` with ``kind="channel"`` at
    ``area``: a fraction of the channels, or a count when integral ≥ 1; ``attribution`` holds
    its other options) gives each image's attributed channels, the top ones of its mask.
    Pass ``channel_masks`` (N×C) to use masks you already have. Then, per image, the full
    activation and the activation with only the attributed channels (the others at the
    ``baseline``, zero or the channel's spatial mean) are inverted
    (:func:`~.inversion.feature_inversion`, options in ``inversion``), all in one fit. For each
    pair in ``pairs`` (default ``(0, 1), (1, 2), …``) the attributed channels are compared and
    each image's activation on its differing channels is inverted too. ``targets``: an int,
    N ints or None (each image's predicted class).

    Channels are the layer's features in any layout (``layer_layout``, ``layer_grid``,
    ``layer_extra_tokens`` as for :func:`~.extremal.extremal_perturbation`: dimension 1 of a
    CNN's N×C×H×W, the last of a Swin's N×H×W×C or a ViT's N×T×C); the inversions match the
    restricted activations in the layer's own layout.
    """
    check_images(images)
    get_layer(model, layer)
    pairs = _checked_pairs(pairs, len(images))
    classes = _image_classes(model, images, targets)
    layout_options = {
        "layer_layout": layer_layout,
        "layer_grid": None if layer_grid is None else list(layer_grid),
        "layer_extra_tokens": layer_extra_tokens,
    }
    own = layer_activation(model, layer, images)
    layout = resolve_layout(
        own.shape, images.shape[-2:], layer, layer_layout, layer_grid, layer_extra_tokens, model
    )
    if channel_masks is None:
        attribution = {**layout_options, **(attribution or {})}
        channel_masks = _attribute_channels(
            model, layer, images, classes, area, baseline, seed, progress, attribution
        )
    activations = layout.channels_first(own)
    num_channels = activations.shape[1]
    _check_channel_masks(channel_masks, len(images), num_channels)
    count = channel_counts([area], num_channels)[0]
    tops = [top_channels(m, count) for m in channel_masks]
    baselines = channel_baseline(activations, baseline)
    wanted, differing = _inversion_targets(activations, tops, baselines, pairs)
    options = {"progress": progress, "seed": seed, **(inversion or {})}
    inverted = feature_inversion(
        model,
        layer,
        torch.cat([layout.channels_back(w) for w in wanted]),
        size=tuple(images.shape[-2:]),
        channels=images.shape[1],
        **options,
    )
    n = len(images)
    full, attributed, rest = inverted[:n], inverted[n : 2 * n], list(inverted[2 * n :])
    return ActivationDiff(
        layer=layer,
        area=float(area),
        channel_masks=channel_masks.detach().cpu(),
        top_channels=tops,
        full=full,
        attributed=attributed,
        difference=full - attributed,
        comparisons=_comparisons(pairs, differing, rest),
        targets=classes.cpu(),
    )


def _checked_pairs(pairs: Sequence[tuple[int, int]] | None, count: int) -> list[tuple[int, ...]]:
    """``pairs`` as tuples (default :func:`consecutive_pairs`), each checked to be two image
    indices in ``[0, count)``."""
    pairs = consecutive_pairs(count) if pairs is None else [tuple(p) for p in pairs]
    for pair in pairs:
        if len(pair) != 2 or not all(0 <= i < count for i in pair):
            raise ValueError(f"pairs must be (i, j) image indices in [0, {count}); got {pair}")
    return pairs


def _image_classes(model: nn.Module, images: torch.Tensor, targets: Any) -> torch.Tensor:
    """One target class per image (N,): ``targets`` resolved, or each image's predicted class
    when None."""
    num_classes = probe_classes(model, images)
    if targets is None:
        targets = predicted_classes(model, images).tolist()
    _, classes = resolve_targets(targets, len(images), num_classes)
    if len(classes) != len(images):
        raise ValueError(f"activation_diff takes one target per image; got {len(classes)}")
    return classes


def _attribute_channels(
    model: nn.Module,
    layer: str,
    images: torch.Tensor,
    classes: torch.Tensor,
    area: float,
    baseline: str,
    seed: int,
    progress: bool,
    attribution: dict[str, Any] | None,
) -> torch.Tensor:
    """N×C channel masks of ``images`` at ``layer``: channel attribution at ``area``."""
    result = extremal_perturbation(
        model,
        images,
        classes,
        [area],
        layer=layer,
        kind="channel",
        channel_baseline=baseline,
        seed=seed,
        progress=progress,
        **(attribution or {}),
    )
    return result.masks[:, 0]


def _check_channel_masks(channel_masks: torch.Tensor, count: int, num_channels: int) -> None:
    """Raise unless ``channel_masks`` is N×C (``count`` images, ``num_channels`` channels)."""
    if tuple(channel_masks.shape) != (count, num_channels):
        raise ValueError(
            f"channel_masks must be N×C = {(count, num_channels)}; got {tuple(channel_masks.shape)}"
        )


def _inversion_targets(
    activations: torch.Tensor,
    tops: list[list[int]],
    baselines: torch.Tensor,
    pairs: Sequence[tuple[int, ...]],
) -> tuple[list[torch.Tensor], list[tuple[list, list, list]]]:
    """The activations to invert, in order: the N full ones, the N restricted to their
    attributed channels, then per pair each image's activation on its differing channels (only
    when it has any, 1×C×…); and per pair its (shared, only first, only second) channels."""
    only_attributed = [
        restrict_channels(a, t, b) for a, t, b in zip(activations, tops, baselines, strict=True)
    ]
    wanted = [activations, torch.stack(only_attributed)]
    differing = []
    for i, j in pairs:
        shared, only_i, only_j = compare_channels(tops[i], tops[j])
        differing.append((shared, only_i, only_j))
        for index, only in ((i, only_i), (j, only_j)):
            if only:
                wanted.append(restrict_channels(activations[index], only, baselines[index])[None])
    return wanted, differing


def _comparisons(
    pairs: Sequence[tuple[int, ...]],
    differing: list[tuple[list, list, list]],
    rest: list[torch.Tensor],
) -> list[ChannelComparison]:
    """One :class:`ChannelComparison` per pair, taking its differing-channel inversions from
    the front of ``rest`` (in the order :func:`_inversion_targets` queued them)."""
    comparisons = []
    for (i, j), (shared, only_i, only_j) in zip(pairs, differing, strict=True):
        first_only = rest.pop(0) if only_i else None
        second_only = rest.pop(0) if only_j else None
        comparisons.append(ChannelComparison(i, j, shared, only_i, only_j, first_only, second_only))
    return comparisons
