"""Grad-CAM on any layer layout: the cheap saliency map that warm-starts the masks.

``s = ReLU(Σ_c ᾱ_c A_c)`` with ``ᾱ_c`` the mean over the grid of ``∂y_t/∂A_c`` (Selvaraju et
al., ICCV 2017), where ``A`` is the layer's activation read by
:func:`~.layer_layout.resolve_layout`: the grid of an N×C×H×W map, of an N×H×W×C stage or of
a ViT's patch tokens (N×T×C, extra tokens left out). Captum's ``LayerGradCam`` (the
evaluation baseline) sums dimension 1 as channels, which is right for CNNs only.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .frozen import frozen
from .layer_layout import resolve_layout
from .layers import forward_hook


def grad_cam(
    model: nn.Module, images: torch.Tensor, targets: torch.Tensor, layer: str
) -> torch.Tensor:
    """Grad-CAM maps of ``images`` (N×C×H×W) for ``targets`` (N,) at ``layer``, bilinearly
    upsampled to the images' size: N×H×W, ≥ 0 (all zero where no evidence is positive).

    The model runs once forward and once backward (to the layer only: the activation is
    detached and made a leaf, so nothing below it is differentiated); it is left as it was.
    """
    captured: list[torch.Tensor] = []

    def leaf(module, args, output):
        if not isinstance(output, torch.Tensor):
            raise ValueError(f"layer {layer!r} returns a {type(output).__name__}, not a tensor")
        captured.append(output.detach().requires_grad_(True))
        # A copy goes on: the layers after may work in place (DenseNet's F.relu(inplace=True)
        # on ``features``), which a leaf that requires grad does not allow.
        return captured[-1].clone()

    with frozen(model), torch.enable_grad(), forward_hook(model, layer, leaf):
        scores = model(images)
    if len(captured) != 1:
        raise ValueError(f"layer {layer!r} ran {len(captured)} times in one forward pass")
    activation = captured[0]
    (grads,) = torch.autograd.grad(scores.gather(1, targets.view(-1, 1)).sum(), activation)
    layout = resolve_layout(activation.shape, images.shape[-2:], layer, model=model)
    if layout.grid is None:
        raise ValueError(f"layer {layer!r} has no spatial grid ({layout.describe()})")
    act, _ = layout.split_grid(activation.detach().float())
    grad, _ = layout.split_grid(grads.float())
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * act).sum(1, keepdim=True))
    return F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
