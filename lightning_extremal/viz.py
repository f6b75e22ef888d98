"""Pictures of masks: heat-map overlays and labelled frames (matplotlib and PIL imported only
here, when needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

#: matplotlib colormap of the mask heat maps.
COLORMAP = "jet"
#: Opacity of the heat map over the image.
ALPHA = 0.5
#: Pixel size of the text written into pictures (mask frames).
LABEL_FONT_SIZE = 12
#: Labelled tiles narrower than this are enlarged: "achieved 0.123" needs about 90 pixels.
LABEL_COLUMN_WIDTH = 96


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """C×H×W or H×W float in [0, 1] → uint8 [0, 255] (W&B and PNG writers need bytes)."""
    return (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()


def label_columns(
    image: torch.Tensor,
    labels: Sequence[Sequence[str]],
    column_width: int,
    padding: int = 0,
    min_width: int = LABEL_COLUMN_WIDTH,
) -> torch.Tensor:
    """Write ``labels[c]`` (lines of text) in a white band above column ``c`` of a grid of
    tiles ``column_width`` pixels wide, ``padding`` pixels apart (torchvision's
    ``make_grid`` layout). uint8 3×H×W → 3×(h + s·H)×(s·W): small tiles are first enlarged
    (nearest neighbour) by the smallest integer ``s`` ≤ 8 that makes them ``min_width``
    wide, so the text is legible (the size depends on the tiles only, never on the text:
    the frames of one GIF keep one size)."""
    import numpy as np
    from PIL import Image, ImageDraw

    font = _label_font()
    scale = min(8, max(1, math.ceil(min_width / max(column_width, 1))))
    picture = Image.fromarray(image.permute(1, 2, 0).contiguous().numpy())
    width, height = picture.width * scale, picture.height * scale
    line_height = font.getbbox("Ag")[3] + 3
    band = line_height * max((len(lines) for lines in labels), default=0) + 4
    canvas = Image.new("RGB", (width, height + band), "white")
    canvas.paste(picture.resize((width, height), Image.Resampling.NEAREST), (0, band))
    draw = ImageDraw.Draw(canvas)
    for c, lines in enumerate(labels):
        x = (padding + c * (column_width + padding)) * scale + 2
        for i, line in enumerate(lines):
            draw.text((x, 2 + i * line_height), line, fill=(0, 0, 0), font=font)
    return torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1).contiguous()


def _label_font():
    """PIL's built-in font at :data:`LABEL_FONT_SIZE` (its bitmap font on Pillow < 10.1)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=LABEL_FONT_SIZE)
    except TypeError:  # Pillow < 10.1: no size
        return ImageFont.load_default()


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
    achieved: Sequence[float] | None = None,
    converged: Sequence[bool] | None = None,
) -> None:
    """One PNG: the image, then the mask of every area as a heat map over it, titled with the
    requested area, the area ``achieved`` and, in red, "NOT CONVERGED" where ``converged``
    says so."""
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
        if achieved is not None:
            label += f" → {achieved[k]:.3f}"
        if rewards is not None:
            label += f" · reward {rewards[k]:.2f}"
        far = converged is not None and not converged[k]
        if far:
            label += "\nNOT CONVERGED"
        axes[k + 1].set_title(label, fontsize=9, color="tab:red" if far else "black")
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- intermediate layers: channel bars, inversions, activation diffs --------------------------

#: Bar colours: attributed (top) channels and the rest.
TOP_COLOR, REST_COLOR = "tab:red", "tab:gray"
#: At most this many channel ids are written above the bars.
MAX_LABELLED = 12


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _hwc(image: torch.Tensor):
    """C×H×W float → H×W×C (or H×W for one channel) numpy in [0, 1] for ``imshow``."""
    image = image.detach().float().cpu().clamp(0, 1)
    return image[0].numpy() if image.shape[0] == 1 else image[:3].permute(1, 2, 0).numpy()


def _save(fig, plt, path: Path) -> None:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _panels(path: Path, panels: list[tuple[torch.Tensor, str]], title: str) -> None:
    """One PNG: images side by side, each with its caption, under ``title``."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.1), squeeze=False)
    for ax, (image, caption) in zip(axes[0], panels, strict=True):
        if image.dim() == 2:
            ax.imshow(image.detach().float().cpu().numpy(), cmap="magma")
        else:
            ax.imshow(_hwc(image), cmap="gray" if image.shape[0] == 1 else None)
        ax.set_title(caption, fontsize=8)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    _save(fig, plt, path)


def save_channel_bars(
    path: Path,
    masks: torch.Tensor,
    areas: Sequence[float],
    tops: Sequence[Sequence[int]],
    title: str,
) -> None:
    """One PNG: per area, the channel mask (K×C) as bars, the attributed channels in colour
    with their ids written above (up to ``MAX_LABELLED``)."""
    plt = _pyplot()
    count, channels = masks.shape
    fig, axes = plt.subplots(
        count, 1, figsize=(max(6.0, 0.08 * channels), 2.2 * count), squeeze=False
    )
    for k, ax in enumerate(axes[:, 0]):
        values = masks[k].detach().float().cpu().numpy()
        colors = [REST_COLOR] * channels
        for c in tops[k]:
            colors[c] = TOP_COLOR
        ax.bar(range(channels), values, color=colors, width=0.9)
        for c in list(tops[k])[:MAX_LABELLED]:
            ax.text(c, values[c] + 0.02, str(c), ha="center", va="bottom", fontsize=6)
        ax.set_ylim(0, 1.15)
        ax.set_xlim(-1, channels)
        ax.set_ylabel("mask", fontsize=8)
        ax.set_title(f"area {areas[k]:g}: {len(tops[k])} channels kept", fontsize=8)
    axes[-1, 0].set_xlabel("channel", fontsize=8)
    fig.suptitle(title, fontsize=9)
    _save(fig, plt, path)


def save_inversion_figure(
    path: Path, image: torch.Tensor, inversion: torch.Tensor, title: str
) -> None:
    """One PNG: the image and the inversion of its activation."""
    _panels(path, [(image, "image"), (inversion, "inversion of Φ(x)")], title)


def save_diff_figure(
    path: Path,
    image: torch.Tensor,
    full: torch.Tensor,
    attributed: torch.Tensor,
    channels: Sequence[int],
    title: str,
) -> None:
    """One PNG: the image, the inversion of its full activation, of the activation with only
    the attributed ``channels``, and their difference ``|full − attributed|`` (summed over
    colour channels) as a heat map."""
    difference = (full.float() - attributed.float()).abs().sum(0)
    shown = ", ".join(str(c) for c in list(channels)[:MAX_LABELLED])
    more = "…" if len(channels) > MAX_LABELLED else ""
    panels = [
        (image, "image"),
        (full, "inversion: all channels"),
        (attributed, f"only {len(channels)} attributed"),
        (difference, "|difference|"),
    ]
    _panels(path, panels, f"{title}\nattributed channels: {shown}{more}")


def _ids(channels: Sequence[int]) -> str:
    listed = ", ".join(str(c) for c in list(channels)[:MAX_LABELLED])
    return (listed + ("…" if len(channels) > MAX_LABELLED else "")) or "none"


def save_comparison_figure(
    path: Path,
    first: torch.Tensor,
    second: torch.Tensor,
    comparison,
    names: tuple[str, str],
) -> None:
    """One PNG: two images, and the inversions of each one's activation on the attributed
    channels the other lacks (a :class:`~.diffing.ChannelComparison`)."""
    panels = [(first, names[0]), (second, names[1])]
    for inversion, only, name in (
        (comparison.first_only, comparison.only_first, names[0]),
        (comparison.second_only, comparison.only_second, names[1]),
    ):
        if inversion is not None:
            panels.append((inversion, f"only in {name}: {len(only)} ch"))
    title = (
        f"shared: {_ids(comparison.shared)}\nonly {names[0]}: {_ids(comparison.only_first)}"
        f" · only {names[1]}: {_ids(comparison.only_second)}"
    )
    _panels(path, panels, title)
