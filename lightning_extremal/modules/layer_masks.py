"""Extremal perturbations of an intermediate layer: masks over its channels or its spatial grid.

Both games reuse :class:`~lightning_extremal.modules.mask_game.MaskGameModule` (the objective,
variants, area constraint, history, DDP sharding); only what a mask is and how it perturbs differ.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import MethodConfig
from ..ops.area import ones_count
from ..ops.layer_layout import LayerLayout, resolve_layout
from ..ops.layer_masks import channel_baseline, channel_counts, space_baseline
from ..ops.layers import layer_activation, layer_calls, replaced_output
from ..ops.masks import gaussian_mask, maxconv_kernel, param_grid_shape, smooth_max_mask
from ..ops.rewards import RewardFn
from .mask_game import MaskGameModule

#: Spread of the step-0 tie-breaking offsets of the mask parameters (see ``order_ties``).
TIE_BREAK = 1e-3


def layer_grid(config: MethodConfig, downsampling: float) -> tuple[int, float, int]:
    """Mask grid stride, σ and area margin in layer cells: the configured ``layer_step`` /
    ``layer_sigma``, else the input-pixel ``step``/``sigma`` divided by the layer's
    downsampling factor ``s`` (stride ≥ 1). The margin is ``⌈σ⌉`` cells, or ``area_margin``
    px / ``s``."""
    step = config.layer_step or max(1, round(config.step / downsampling))
    sigma = config.layer_sigma or config.sigma / downsampling
    margin = (
        math.ceil(sigma)
        if config.area_margin is None
        else math.ceil(config.area_margin / downsampling)
    )
    return step, float(sigma), margin


class LayerMaskModule(MaskGameModule):
    """Masks that move one layer's activation towards a baseline:
    ``Φ̃_L = b + m·(Φ_L(x) − b)``, then the rest of the network runs on ``Φ̃_L``.

    ``Φ_L(x)`` and ``b`` are computed once (a no-grad forward up to the layer) and kept as
    buffers. Each step runs the whole classifier on the images, one copy per perturbation,
    with a forward hook that replaces the layer's output by the perturbed activation. Splitting
    a network at an arbitrary module is not possible in general (skip connections, functional
    code in ``forward``), the hook is: the part before the layer still runs, but on inputs
    that need no gradient, so autograd records (and back-propagates through) only the part
    after it. The hook is registered for one forward pass and always removed.

    No jitter: the reference's jitter flips the input, which at a layer is not the flip of the
    activation, so ``config.jitter`` is ignored.

    Ties: every parameter starts at ``init``, and the rank-statistics constraint orders tied
    values by index. Over a few thousand pixels that order fades in a few gentle steps; over a
    few dozen channels or layer cells one SGD step of the area term (gradient ∝ λ/|Ω|) moves
    a parameter by most of [0, 1] and freezes the arbitrary order. So at step 0 the ties are
    broken by first-order importance: the parameters are offset by at most ``TIE_BREAK`` in
    the order of the game reward's gradient (the most useful entry ranks highest).

    Subclasses supply ``padded_masks``/``visible`` and :meth:`expand` (a mask → a tensor that
    broadcasts against ``Φ_L``).
    """

    def __init__(
        self,
        classifier: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor,
        image_index: torch.Tensor,
        config: MethodConfig,
        reward: RewardFn | None,
        layout: LayerLayout,
        activation: torch.Tensor,
        baseline: torch.Tensor,
        param_shape: tuple[int, ...],
        ones: list[int],
        mask_shape: tuple[int, ...],
    ) -> None:
        super().__init__(
            classifier,
            targets,
            image_index,
            config,
            reward,
            param_shape=param_shape,
            ones=ones,
            mask_shape=mask_shape,
        )
        self.layer, self.layout = config.layer, layout
        self.register_buffer("images", images, persistent=False)
        self.register_buffer("activation", activation.float().contiguous(), persistent=False)
        self.register_buffer("baseline", baseline.float().contiguous(), persistent=False)

    def expand(self, masks: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def own_layout(self, perturbed: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The perturbed activation (canonical, channels first) in the layer's own layout."""
        return self.layout.channels_back(perturbed)

    def on_train_start(self) -> None:
        super().on_train_start()  # checks the model and keeps ∂R/∂p at the start
        if self.global_step == 0:  # not when resuming from a checkpoint
            self.order_ties(self.start_gradient)

    def order_ties(self, grad: torch.Tensor | None) -> None:
        """Offset each mask's parameters by ``≤ TIE_BREAK`` in the order of ``grad`` (``∂R/∂p``
        at the start, see the class docstring), keeping them in [0, 1]."""
        if grad is None:  # the reward does not reach the masks
            return
        grad = grad.flatten(1)
        rank = grad.argsort(dim=1, stable=True).argsort(dim=1).float()  # 0: least useful
        offsets = TIE_BREAK * rank / max(1, grad.shape[1] - 1)
        with torch.no_grad():
            params = self.mask_params.flatten(1)
            shifted = torch.where(
                params >= TIE_BREAK, params - TIE_BREAK + offsets, params + offsets
            )
            self.mask_params.copy_(shifted.clamp(0, 1).view_as(self.mask_params))

    def perturb(self, masks: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """``Φ̃ = b + m·(Φ − b)`` for each mask (fp32), channels first (``activation`` and
        ``baseline`` are kept in the canonical form of :class:`~..ops.layer_layout.LayerLayout`)."""
        with torch.autocast(self.device.type, enabled=False):
            base = self.baseline[index]
            return base + self.expand(masks) * (self.activation[index] - base)

    def scores(self, kept: list[torch.Tensor], part: slice, flip: bool) -> torch.Tensor:
        index = self.mask_image[part].repeat(len(kept))
        perturbed = self.own_layout(self.perturb(torch.cat(kept), index), index)
        with replaced_output(self.classifier, self.layer, perturbed):
            return self.classifier(self.images[index])


def _activation(
    classifier: nn.Module, layer: str, images: torch.Tensor, config: MethodConfig
) -> tuple[torch.Tensor, LayerLayout]:
    """``Φ_L(x)`` computed where the classifier is, kept where the images are, and what its
    dimensions mean (``config.layer_layout``, ``layer_grid``, ``layer_extra_tokens``)."""
    device = next(iter(classifier.parameters()), images).device
    calls = layer_calls(classifier, layer, images[:1].to(device))
    if calls != 1:
        raise ValueError(
            f"layer {layer!r} runs {calls} times per forward pass; choose a module that runs "
            "once (for a shared module, e.g. a ReLU reused in a block: its parent block)"
        )
    activation = layer_activation(classifier, layer, images.to(device)).to(images.device)
    if activation.dim() < 2 or activation.shape[0] != images.shape[0]:
        raise ValueError(
            f"layer {layer!r} gives an activation of shape {tuple(activation.shape)}; "
            "expected one row per image (N×…)"
        )
    layout = resolve_layout(
        activation.shape,
        images.shape[-2:],
        layer,
        config.layer_layout,
        config.layer_grid,
        config.layer_extra_tokens,
        classifier,
    )
    return activation, layout


class ChannelPerturbationModule(LayerMaskModule):
    """A mask ``m ∈ [0, 1]^C`` over the channels of layer ``layer``:
    ``Φ̃_c = m_c·Φ_L(x)_c + (1 − m_c)·b_c`` with ``b`` zero or the channel's spatial mean
    (``config.channel_baseline``). The area is the fraction (or count, for integral areas
    ≥ 1) of channels kept, by the same rank-statistics constraint over the C values. The
    channels are the layer's features whatever its layout (:mod:`~..ops.layer_layout`: dimension
    1 of N×C×H×W, the last of N×H×W×C and of N×T×C tokens, where every token is masked).

    Args: as :class:`ExtremalPerturbationModule`; ``config.layer`` names the classifier's
    module. Masks (results) are C values.
    """

    mask_kind = "channel"

    def __init__(
        self,
        classifier: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor,
        image_index: torch.Tensor,
        config: MethodConfig,
        reward: RewardFn | None = None,
    ) -> None:
        activation, layout = _activation(classifier, config.layer, images, config)
        activation = layout.channels_first(activation)
        num_channels = activation.shape[1]
        super().__init__(
            classifier,
            images,
            targets,
            image_index,
            config,
            reward,
            layout,
            activation,
            channel_baseline(activation, config.channel_baseline),
            param_shape=(num_channels,),
            ones=channel_counts(config.areas, num_channels),
            mask_shape=(num_channels,),
        )

    def padded_masks(self, part: slice = slice(None)) -> torch.Tensor:
        """The channel masks, B×C: the parameters themselves (clamped to [0, 1] after each
        step), copied so that results are not views of the parameters."""
        return self.mask_params[part].clone()

    def expand(self, masks: torch.Tensor) -> torch.Tensor:
        return masks.view(*masks.shape, *([1] * (self.activation.dim() - 2)))


class LayerSpatialModule(LayerMaskModule):
    """A smooth mask over the H_L×W_L grid of layer ``layer``'s activation:
    ``Φ̃_{cu} = m_u·Φ_L(x)_{cu} + (1 − m_u)·b_{cu}`` with ``b`` zero, the channel's spatial
    mean or the blurred activation (``config.space_baseline``; blur σ = ``max_blur`` px in
    cells). The mask is the input method's smooth mask on the layer grid, with stride, σ and
    margin in layer cells (:func:`layer_grid`). Masks (results) are H_L×W_L. The grid is the
    layer's own (N×C×H×W, N×H×W×C) or its patch tokens' (N×T×C after the leading extra tokens,
    which are kept as they are: ``extra``).
    """

    mask_kind = "layer-spatial"

    def __init__(
        self,
        classifier: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor,
        image_index: torch.Tensor,
        config: MethodConfig,
        reward: RewardFn | None = None,
    ) -> None:
        activation, layout = _activation(classifier, config.layer, images, config)
        if layout.grid is None:
            raise ValueError(
                f"spatial attribution needs a layer with a spatial grid; {config.layer!r} gives "
                f"{tuple(activation.shape)} ({layout.describe()})"
            )
        activation, extra = layout.split_grid(activation)
        size = layout.grid
        downsampling = max(images.shape[-2] / size[0], images.shape[-1] / size[1])
        step, sigma, margin = layer_grid(config, downsampling)
        super().__init__(
            classifier,
            images,
            targets,
            image_index,
            config,
            reward,
            layout,
            activation,
            space_baseline(activation, config.space_baseline, config.max_blur / downsampling),
            param_shape=(1, *param_grid_shape(*size, step)),
            ones=ones_count(size[0] * size[1], config.areas).tolist(),
            mask_shape=size,
        )
        self.size, self.step, self.sigma, self.margin = size, step, sigma, margin
        self.downsampling = downsampling
        self.register_buffer("kernel", maxconv_kernel(step, sigma), False)
        self.register_buffer("extra", extra.float(), persistent=False)

    def own_layout(self, perturbed: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The perturbed grid with the image's extra tokens (unperturbed), in the layer's
        own layout."""
        return self.layout.join_grid(perturbed, self.extra[index])

    def padded_masks(self, part: slice = slice(None)) -> torch.Tensor:
        """The current masks with their margin, B×1×(H_L+2g)×(W_L+2g) in [0, 1]."""
        params = self.mask_params[part]
        with torch.autocast(self.device.type, enabled=False):
            if self.config.smoothing == "gaussian":
                return gaussian_mask(params, self.step, self.sigma, self.size, self.margin)
            return smooth_max_mask(
                params, self.kernel, self.size, self.config.coldness, self.margin
            )

    def visible(self, padded: torch.Tensor) -> torch.Tensor:
        """Crop the margin: B×1×H_L×W_L."""
        g = self.margin
        return padded[..., g : g + self.size[0], g : g + self.size[1]]

    def expand(self, masks: torch.Tensor) -> torch.Tensor:
        return masks
