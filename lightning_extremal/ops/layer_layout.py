"""What a layer's activation dimensions mean: which one holds the channels (features) and
which ones form the spatial grid, for convolutional (N×C×H×W), channels-last (N×H×W×C, e.g.
Swin) and token (N×T×C, e.g. ViT: ``k`` leading class/register tokens, then an H×W grid of
patch tokens in row-major order) activations.

Layer masks work on one canonical form — channels first, N×C×… for channel masks and an
N×C×H×W grid for spatial masks — and :class:`LayerLayout` converts to it and back, so a
channel means a feature and a cell means a place on every architecture.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

#: Values of ``layer_layout``: ``auto`` detects the layout where only one reading fits.
LAYOUTS = ("auto", "nchw", "nhwc", "ntc")
#: ``auto`` on a token activation considers at most this many leading non-grid tokens (class,
#: distillation and register tokens) when the model does not say how many it has.
MAX_EXTRA_TOKENS = 8


#: The permutation that puts each layout's channels in dimension 1 (``nchw``: none).
_TO_CHANNELS_FIRST = {"nhwc": (0, 3, 1, 2), "ntc": (0, 2, 1)}


def _inverse(order: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted(range(len(order)), key=order.__getitem__))


@dataclass(frozen=True)
class LayerLayout:
    """How to read one layer's activation.

    ``kind``: ``nchw`` (channels in dimension 1, any trailing dimensions; a grid when they are
    H×W), ``nhwc`` (N×H×W×C) or ``ntc`` (N×T×C, ``extra_tokens`` leading tokens then the
    ``grid`` row-major); ``grid``: H_L×W_L, or None for an activation without a spatial grid
    (N×C vectors, or N×C×L); ``channels``: C.
    """

    kind: str
    channels: int
    grid: tuple[int, int] | None = None
    extra_tokens: int = 0

    def describe(self) -> str:
        """e.g. ``N×T×C tokens: 768 channels, 1 extra token + a 14×14 grid``."""
        where = f"a {self.grid[0]}×{self.grid[1]} grid" if self.grid else "no spatial grid"
        if self.kind == "ntc":
            extra = f"{self.extra_tokens} extra token{'s' * (self.extra_tokens != 1)} + "
            return f"N×T×C tokens: {self.channels} channels, {extra}{where}"
        name = {"nchw": "N×C×H×W", "nhwc": "N×H×W×C"}[self.kind]
        return f"{name}: {self.channels} channels, {where}"

    def channels_first(self, activation: torch.Tensor) -> torch.Tensor:
        """N×C×…: N×C×H×W for ``nchw``/``nhwc``, N×C×T (every token) for ``ntc``."""
        order = _TO_CHANNELS_FIRST.get(self.kind)
        return activation if order is None else activation.permute(order)

    def channels_back(self, canonical: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`channels_first`: the layer's own layout."""
        order = _TO_CHANNELS_FIRST.get(self.kind)
        return canonical if order is None else canonical.permute(_inverse(order))

    def split_grid(self, activation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N×C×H×W grid, N×C×k extra tokens — k = 0 unless ``ntc``)."""
        if self.grid is None:
            raise ValueError(f"the layer has no spatial grid ({self.describe()})")
        canonical = self.channels_first(activation)
        if self.kind != "ntc":
            return canonical, canonical.new_zeros(*canonical.shape[:2], 0)
        k = self.extra_tokens
        grid = canonical[:, :, k:].unflatten(2, self.grid)
        return grid, canonical[:, :, :k]

    def join_grid(self, grid: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`split_grid`: the layer's own layout."""
        if self.kind == "ntc":
            grid = torch.cat([extra.to(grid.dtype), grid.flatten(2)], dim=2)
        return self.channels_back(grid)


def _fits(grid: Sequence[int], image: Sequence[int]) -> bool:
    """True when an H_L×W_L grid can be the image's H×W seen with one downsampling factor
    ``s``: each side within one cell of ``H/s``, ``W/s`` (as padding and rounding leave it),
    and ordered as the image's sides are (the same layers shrink both sides alike, so a
    square image has a square grid)."""
    (h, w), (height, width) = grid, image
    if (h > w) - (h < w) != (height > width) - (height < width):
        return False
    low, high = 0.0, math.inf
    for cells, pixels in zip(grid, image, strict=True):
        if cells < 1 or cells > pixels:
            return False
        low = max(low, pixels / (cells + 1))
        high = min(high, pixels / (cells - 1) if cells > 1 else math.inf)
    return low < high


def _model_tokens(model: nn.Module | None, layer: str, image: Sequence[int]) -> tuple | None:
    """(grid, extra tokens or None) where the model says so: the innermost module holding
    ``layer`` (the model itself, or a wrapped one such as a normalising wrapper's) with
    torchvision's ``VisionTransformer.patch_size`` or timm's ``patch_embed.patch_size`` (and
    ``num_prefix_tokens``); None when none does."""
    if model is None:
        return None
    modules = dict(model.named_modules())
    parts = layer.split(".")
    for depth in range(len(parts) - 1, -1, -1):
        owner = modules.get(".".join(parts[:depth]))
        patch = getattr(owner, "patch_size", None)
        if patch is None:
            patch = getattr(getattr(owner, "patch_embed", None), "patch_size", None)
        if patch is not None:
            ph, pw = (patch, patch) if isinstance(patch, int) else tuple(patch)
            extra = getattr(owner, "num_prefix_tokens", None)
            return (image[0] // ph, image[1] // pw), extra
    return None


def _token_readings(tokens: int, image: Sequence[int], grid, extra) -> list[tuple]:
    """Every (grid, extra tokens) with ``extra + H_L·W_L = tokens`` that fits the image,
    narrowed by a given ``grid`` and/or ``extra``."""
    counts = [extra] if extra is not None else range(min(MAX_EXTRA_TOKENS, tokens - 1) + 1)
    readings = []
    for k in counts:
        cells = tokens - k
        if cells < 2 and grid is None:  # one patch token is no grid to read
            continue
        for h in range(1, cells + 1):
            if cells % h:
                continue
            shape = (h, cells // h)
            if (grid is None and _fits(shape, image)) or tuple(grid or ()) == shape:
                readings.append((shape, k))
    return readings


def _shape(activation_shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in activation_shape)


def resolve_layout(
    shape: Sequence[int],
    image: Sequence[int],
    layer: str,
    declared: str = "auto",
    grid: Sequence[int] | None = None,
    extra_tokens: int | None = None,
    model: nn.Module | None = None,
) -> LayerLayout:
    """The :class:`LayerLayout` of an activation of ``shape`` from ``image``-sized (H×W)
    inputs: ``declared`` (``layer_layout``), else detected — and ``auto`` never guesses:
    when two readings fit (an N×C×H×W shape whose C also fits as a grid side, a token count
    with two grid readings) or none does, it is a ``ValueError`` naming the options.

    A token layout (``ntc``) takes its grid and leading extra tokens from ``grid`` /
    ``extra_tokens`` (``layer_grid``, ``layer_extra_tokens``), else from the model where it
    says so (torchvision/timm ViT patch size), else from the token count (≤
    ``MAX_EXTRA_TOKENS`` extra tokens, a grid of the image's aspect).
    """
    if declared not in LAYOUTS:
        raise ValueError(f"layer_layout must be one of {list(LAYOUTS)}; got {declared!r}")
    shape = tuple(int(d) for d in shape)
    what = f"layer {layer!r} gives {_shape(shape)} for {image[0]}×{image[1]} images"
    if grid is not None:
        grid = tuple(int(g) for g in grid)
    if declared == "auto":
        declared = _detect(shape, image, what, grid, extra_tokens, model, layer)
    if declared == "nchw":
        if len(shape) < 2:
            raise ValueError(f"{what}; layer_layout='nchw' needs N×C(×…)")
        own = tuple(shape[2:]) if len(shape) == 4 else None
        _check_grid(grid, own, what)
        return LayerLayout("nchw", shape[1], own)
    if declared == "nhwc":
        if len(shape) != 4:
            raise ValueError(f"{what}; layer_layout='nhwc' needs N×H×W×C")
        _check_grid(grid, tuple(shape[1:3]), what)
        return LayerLayout("nhwc", shape[3], tuple(shape[1:3]))
    if len(shape) != 3:
        raise ValueError(f"{what}; layer_layout='ntc' needs N×T×C")
    readings = _ntc_readings(shape[1], image, grid, extra_tokens, model, layer)
    if len(readings) != 1:
        raise ValueError(f"{what}; {_token_advice(readings)}")
    ((cells, k),) = readings
    return LayerLayout("ntc", shape[2], cells, k)


def _ntc_readings(tokens, image, grid, extra, model, layer) -> list[tuple]:
    """The token readings: the model's own when it says (and nothing more is given)."""
    hint = _model_tokens(model, layer, image)
    if hint is not None and grid is None:
        cells, said = hint
        k = (
            extra
            if extra is not None
            else (said if said is not None else tokens - math.prod(cells))
        )
        return [(cells, k)] if k >= 0 and k + math.prod(cells) == tokens else []
    return _token_readings(tokens, image, grid, extra)


def _token_advice(readings: list[tuple]) -> str:
    options = ", ".join(f"{k} extra + {g[0]}×{g[1]}" for g, k in readings[:4])
    if not readings:
        return (
            "no grid of the image's aspect plus ≤ "
            f"{MAX_EXTRA_TOKENS} extra tokens makes that many tokens; set layer_grid=[H, W] "
            "and layer_extra_tokens=k (or layer_layout='nchw' to take dimension 1 as channels)"
        )
    return f"the tokens read as {options}; set layer_grid=[H, W] and layer_extra_tokens=k"


def _check_grid(grid, own, what) -> None:
    if grid is not None and tuple(grid) != own:
        raise ValueError(f"{what}; layer_grid={list(grid)} does not match its grid {own}")


def _detect(shape, image, what, grid, extra, model, layer) -> str:
    """``nchw`` | ``nhwc`` | ``ntc`` where exactly one reading fits (see resolve_layout)."""
    if len(shape) == 2:
        return "nchw"
    if len(shape) == 3:
        if _ntc_readings(shape[1], image, grid, extra, model, layer):
            return "ntc"
        raise ValueError(
            f"{what}, which does not read as tokens (N×T×C) of an image grid; set "
            "layer_layout='ntc' with layer_grid=[H, W] and layer_extra_tokens=k, or "
            "layer_layout='nchw' to take dimension 1 as channels"
        )
    if len(shape) != 4:
        raise ValueError(f"{what}; set layer_layout to one of ['nchw'] (channels in dimension 1)")
    fitting = [
        kind
        for kind, cells in (("nchw", shape[2:4]), ("nhwc", shape[1:3]))
        if (_fits(cells, image) if grid is None else tuple(cells) == grid)
    ]
    if len(fitting) == 1:
        return fitting[0]
    readings = (
        f"N×C×H×W ({shape[1]} channels, a {shape[2]}×{shape[3]} grid) and N×H×W×C "
        f"({shape[3]} channels, a {shape[1]}×{shape[2]} grid)"
    )
    if fitting:
        raise ValueError(
            f"{what}, which reads both as {readings}; set layer_layout to 'nchw' or 'nhwc'"
        )
    raise ValueError(
        f"{what}, whose grid fits neither reading, {readings}; set layer_layout to 'nchw' or 'nhwc'"
    )
