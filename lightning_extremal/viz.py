"""Pictures of masks: heat-map overlays (matplotlib imported only here, when needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

#: matplotlib colormap of the mask heat maps.
COLORMAP = "jet"
#: Opacity of the heat map over the image.
ALPHA = 0.5


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """C×H×W or H×W float in [0, 1] → uint8 [0, 255] (W&B and PNG writers need bytes)."""
    return (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()


def heatmap_rgb(mask: torch.Tensor, colormap: str = COLORMAP) -> torch.Tensor:
    """H×W mask in [0, 1] → 3×H×W float RGB through a matplotlib colormap."""
    from matplotlib import colormaps

    rgba = colormaps[colormap](mask.detach().float().clamp(0, 1).cpu().numpy())
    return torch.from_numpy(rgba[..., :3]).permute(2, 0, 1).float()


def overlay(image: torch.Tensor, mask: torch.Tensor, alpha: float = ALPHA) -> torch.Tensor:
    """Blend ``(1 − α)·image + α·heatmap(mask)``: 3×H×W in [0, 1]."""
    rgb = image.detach().float().cpu().clamp(0, 1)
    if rgb.shape[0] == 1:
        rgb = rgb.expand(3, -1, -1)
    return (1 - alpha) * rgb[:3] + alpha * heatmap_rgb(mask)


def save_overlay_figure(
    path: Path,
    image: torch.Tensor,
    masks: torch.Tensor,
    areas: Sequence[float],
    title: str,
    rewards: Sequence[float] | None = None,
) -> None:
    """One PNG: the image, then the mask of every area as a heat map over it."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    count = len(areas) + 1
    fig, axes = plt.subplots(1, count, figsize=(2.6 * count, 2.9), squeeze=False)
    axes = axes[0]
    axes[0].imshow(image.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy())
    axes[0].set_title(title, fontsize=9)
    for k, area in enumerate(areas):
        axes[k + 1].imshow(overlay(image, masks[k]).permute(1, 2, 0).numpy())
        label = f"area {area:g}"
        if rewards is not None:
            label += f" · reward {rewards[k]:.2f}"
        axes[k + 1].set_title(label, fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
