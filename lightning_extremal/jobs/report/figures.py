"""The report's matplotlib figures as PNG bytes: per-pair curves and evolution strips, and the
run's summary (histograms across masks, percentile bands of the curves across pairs).

matplotlib is imported inside the functions that draw, so importing this module stays cheap.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

#: Most frames shown in a mask-evolution strip (evenly spaced, first and last included).
STRIP_FRAMES = 6
#: The band of the aggregate curves: these percentiles across pairs, with the median.
BAND_PERCENTILES = (10, 90)
#: What the report says beside curves of a run with ``method.jitter`` on.
JITTER_NOTE = (
    "The curves zig-zag because method.jitter is on: on every other step the classifier sees "
    "the perturbed image flipped left-right, so the reward alternates between the scores of "
    "two slightly different images. That is the jitter, not instability. The thick lines "
    "average each two consecutive steps (one flipped, one not), which removes the alternation; "
    "the thin lines are the raw per-step values."
)


def pyplot():
    """matplotlib's pyplot on the Agg backend (no screen needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig, dpi: int = 80) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(fig)
    return buffer.getvalue()


def smooth_step_pairs(values: np.ndarray) -> np.ndarray:
    """Mean of each two consecutive steps, ``s_t = (v_t + v_{t+1}) / 2`` over the last axis
    (…×T → …×(T−1)): with the jitter flip every other step, each pair holds one flipped and
    one unflipped step, so the alternation cancels."""
    return (values[..., 1:] + values[..., :-1]) / 2


class PairCurves:
    """Reward and achieved area per step of one pair at a time, one colour per area (dashed:
    the requested area); with ``jitter`` raw (thin) and averaged over step pairs (thick).

    One figure, laid out once and redrawn with each pair's data: making and laying out a
    matplotlib figure costs several times more than drawing it, and a report draws thousands.
    Use as a context manager (the figure is closed at the end).
    """

    def __init__(self, areas: list[float], jitter: bool) -> None:
        plt = pyplot()
        self.jitter = jitter
        self.fig, (self.left, self.right) = plt.subplots(1, 2, figsize=(7.5, 2.4))
        self.fig.subplots_adjust(left=0.07, right=0.98, bottom=0.2, top=0.88, wspace=0.2)
        self.lines = []
        for k, area in enumerate(areas):
            color = f"C{k}"
            raw = dict(color=color, linewidth=0.6 if jitter else 1.2, alpha=0.45 if jitter else 1)
            thick = dict(color=color, linewidth=1.6, visible=jitter)
            self.lines.append(
                (
                    self.left.plot([], [], **raw)[0],
                    self.left.plot([], [], label=f"area {area:g}", **thick)[0],
                    self.right.plot([], [], **raw)[0],
                    self.right.plot([], [], **thick)[0],
                )
            )
            self.right.axhline(area, color=color, linestyle="--", linewidth=0.8)
        self.left.set(title="reward", xlabel="step")
        self.right.set(title="achieved area (dashed: requested)", xlabel="step", ylim=(0, 1.02))
        if not jitter:
            for line in self.lines:
                line[0].set_label(line[1].get_label())
        self.left.legend(handles=[line[0 if not jitter else 1] for line in self.lines], fontsize=7)

    def __enter__(self) -> PairCurves:
        return self

    def __exit__(self, *exc) -> None:
        pyplot().close(self.fig)

    def png(self, history: dict[str, torch.Tensor], pair: int, steps: int) -> bytes:
        """The curves of ``pair`` over its first ``steps`` steps, as PNG bytes."""
        x = np.arange(steps)
        for k, (reward_raw, reward_smooth, area_raw, area_smooth) in enumerate(self.lines):
            reward = history["reward"][pair, k, :steps].double().numpy()
            achieved = history["achieved_area"][pair, k, :steps].double().numpy()
            reward_raw.set_data(x, reward)
            area_raw.set_data(x, achieved)
            if self.jitter and steps > 1:
                reward_smooth.set_data(x[1:] - 0.5, smooth_step_pairs(reward))
                area_smooth.set_data(x[1:] - 0.5, smooth_step_pairs(achieved))
        self.left.relim()
        self.left.autoscale_view()
        self.right.set_xlim(-0.5, max(steps - 0.5, 0.5))
        buffer = io.BytesIO()
        self.fig.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()


def histograms_png(
    area_error: np.ndarray, rewards: np.ndarray, iou: np.ndarray, areas: list[float]
) -> bytes:
    """Histograms across masks: achieved − requested area and reward (P×K, one colour per
    area), and IoU with the ground truth (P, one per pair; the panel is left out when no
    pair has ground truth)."""
    plt = pyplot()
    has_iou = bool(np.isfinite(iou).any())
    fig, axes = plt.subplots(1, 3 if has_iou else 2, figsize=(10 if has_iou else 7, 2.4))
    for k, area in enumerate(areas):
        style = dict(bins=20, alpha=0.55, color=f"C{k}", label=f"area {area:g}")
        axes[0].hist(area_error[:, k], **style)
        axes[1].hist(rewards[:, k], **style)
    axes[0].axvline(0, color="k", linewidth=0.8)
    axes[0].set(title="achieved − requested area", ylabel="masks")
    axes[1].set(title="reward", ylabel="masks")
    axes[0].legend(fontsize=7)
    if has_iou:
        axes[2].hist(iou[np.isfinite(iou)], bins=20, range=(0, 1), color="C7")
        axes[2].set(title="IoU with ground truth (largest area)", ylabel="pairs")
    fig.tight_layout()
    return figure_png(fig)


def _band(ax, values: np.ndarray, x: np.ndarray, color: str, label: str | None) -> None:
    """Median line and the :data:`BAND_PERCENTILES` band across the first axis (P×T)."""
    low, mid, high = np.percentile(values, [BAND_PERCENTILES[0], 50, BAND_PERCENTILES[1]], 0)
    ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
    ax.plot(x, mid, color=color, linewidth=1.4, label=label)


def aggregate_curves_png(
    reward: np.ndarray, achieved: np.ndarray, areas: list[float], jitter: bool
) -> bytes:
    """Reward and achieved area over steps across pairs (P×K×T each): per area the median and
    the 10–90 % band; with ``jitter`` the values are first averaged over step pairs."""
    plt = pyplot()
    if jitter and reward.shape[-1] > 1:
        reward, achieved = smooth_step_pairs(reward), smooth_step_pairs(achieved)
        x = np.arange(reward.shape[-1]) + 0.5
    else:
        x = np.arange(reward.shape[-1])
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.5, 2.6))
    for k, area in enumerate(areas):
        _band(left, reward[:, k], x, f"C{k}", f"area {area:g}")
        _band(right, achieved[:, k], x, f"C{k}", None)
        right.axhline(area, color=f"C{k}", linestyle="--", linewidth=0.8)
    band = f"median and {BAND_PERCENTILES[0]}–{BAND_PERCENTILES[1]} % across pairs"
    left.set(title=f"reward ({band})", xlabel="step")
    right.set(title="achieved area (dashed: requested)", xlabel="step", ylim=(0, 1.02))
    left.legend(fontsize=7)
    fig.tight_layout()
    return figure_png(fig)


def gif_frames(path: Path) -> list[torch.Tensor]:
    """The frames of a GIF as 3×H×W uint8 tensors."""
    from PIL import Image, ImageSequence

    with Image.open(path) as gif:
        frames = [np.asarray(frame.convert("RGB")).copy() for frame in ImageSequence.Iterator(gif)]
    return [torch.from_numpy(f).permute(2, 0, 1) for f in frames]


def frame_steps(count: int, every: int | None, steps: int) -> list[str]:
    """Labels of MaskEvolution's frames: steps 0, n, 2n, … and the final step."""
    if every:
        labels = list(range(0, steps, every))
        if not labels or labels[-1] != steps:
            labels.append(steps)
        if len(labels) == count:
            return [f"step {s}" for s in labels]
    return [f"frame {i}" for i in range(count)]


def evolution_strip_png(frames: list[torch.Tensor], labels: list[str], scale: int = 1) -> bytes:
    """Up to :data:`STRIP_FRAMES` evenly spaced frames side by side (nearest-neighbour
    upscaled by ``scale``), each labelled with its step above it (drawn with PIL: a
    matplotlib figure per pair is the slowest part of a big report)."""
    from PIL import Image, ImageDraw

    count = min(STRIP_FRAMES, len(frames))
    picks = sorted({round(i * (len(frames) - 1) / max(count - 1, 1)) for i in range(count)})
    height, width = (side * scale for side in frames[0].shape[-2:])
    gap, band = 6, 14
    strip = Image.new("RGB", (len(picks) * (width + gap) - gap, height + band), "white")
    draw = ImageDraw.Draw(strip)
    for n, i in enumerate(picks):
        frame = Image.fromarray(frames[i].permute(1, 2, 0).contiguous().numpy())
        strip.paste(frame.resize((width, height), Image.NEAREST), (n * (width + gap), band))
        draw.text((n * (width + gap) + 2, 1), labels[i], fill="black")
    buffer = io.BytesIO()
    strip.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
