"""The report's figures: the run's summary as matplotlib PNG bytes (histograms across masks,
percentile bands of the curves across pairs) and each pair's curves as inline SVG text.

matplotlib is imported inside the functions that draw, so importing this module stays cheap.
"""

from __future__ import annotations

import io
import math

import numpy as np

#: The band of the aggregate curves: these percentiles across pairs, with the median.
BAND_PERCENTILES = (10, 90)
#: What the report says beside curves of a run with ``method.jitter`` on.
JITTER_NOTE = (
    "The curves zig-zag because method.jitter is on: on every other step the classifier sees "
    "the perturbed image flipped left-right, so the reward alternates between the scores of "
    "two slightly different images. That is the jitter, not instability. The curves of this "
    "report average consecutive steps in pairs (one flipped, one not), which removes the "
    "alternation."
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


#: matplotlib's default colours C0…C9 (tab10): area k is drawn in colour k in every figure.
COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
#: Most points of a line in a pair's curves: longer runs are averaged over bins of steps.
CURVE_POINTS = 60
#: A pair's curves: SVG units (two per pixel) of the drawing, a plot's box and its margins.
SVG_WIDTH, SVG_HEIGHT = 1040, 250
PLOT_WIDTH, PLOT_TOP, PLOT_HEIGHT = 400, 34, 170
#: Left edge of each of the two plots (reward, achieved area), SVG units.
PLOT_LEFTS = (96, 616)
#: The caption of every pair's curves (said once, on the first page).
CURVES_NOTE = (
    "Per pair: reward (left) and achieved area (right, dashed: the requested area) over the "
    "steps, one colour per area; each axis spans the pair's own values. Each point is the "
    "mean of a bin of consecutive steps (an even number of them with method.jitter on, which "
    "removes the jitter's alternation)."
)


def step_bins(values: np.ndarray, jitter: bool) -> tuple[np.ndarray, np.ndarray]:
    """Means of ``values`` (…×T) over bins of consecutive steps, at most :data:`CURVE_POINTS`
    bins, each of an even number of steps with ``jitter`` (a flipped and an unflipped step
    each: the zig-zag cancels): ``(x, means)`` with x the bins' centre steps."""
    steps = values.shape[-1]
    size = max(1, math.ceil(steps / CURVE_POINTS))
    if jitter and steps > 1:
        size += size % 2
    starts = np.arange(0, steps, size)
    sums = np.add.reduceat(values, starts, axis=-1)
    counts = np.diff(np.append(starts, steps))
    return starts + (counts - 1) / 2, sums / counts


def _value_range(values: np.ndarray, marks: list[float]) -> tuple[float, float]:
    """The span of ``values`` and ``marks`` (finite ones), padded by 5 % (±0.01 if flat)."""
    finite = np.concatenate([values[np.isfinite(values)].ravel(), np.asarray(marks, float)])
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    pad = 0.05 * (high - low) or 0.01
    return low - pad, high + pad


def tick(value: float, span: float) -> str:
    """``value`` with the decimals a range of ``span`` needs to tell its ends apart (two
    significant digits of the span): short enough to sit left of a plot."""
    decimals = max(0, 1 - math.floor(math.log10(span))) if span > 0 else 2
    return f"{value:.{decimals}f}"


def _plot_svg(
    left: int, title: str, x: np.ndarray, lines: np.ndarray, steps: int, marks: list[float]
) -> str:
    """One plot of the pair's curves: a line per area (K×B ``lines`` at steps ``x``), the
    dashed ``marks`` (one per area, or none), its box, title, first/last step and the lowest
    and highest value on its axes."""
    low, high = _value_range(lines, marks)
    span, span_x = high - low, max(steps - 1, 1)

    def px(step: float) -> int:
        return round(left + PLOT_WIDTH * step / span_x)

    def py(value: float) -> int:
        return round(PLOT_TOP + PLOT_HEIGHT * (high - value) / (high - low))

    bottom = PLOT_TOP + PLOT_HEIGHT
    parts = [
        f'<rect x="{left}" y="{PLOT_TOP}" width="{PLOT_WIDTH}" height="{PLOT_HEIGHT}" '
        'fill="none" stroke="#bbb"/>',
        f'<text x="{left}" y="{PLOT_TOP - 10}">{title}</text>',
        f'<text x="{left - 6}" y="{PLOT_TOP + 16}" text-anchor="end">{tick(high, span)}</text>',
        f'<text x="{left - 6}" y="{bottom}" text-anchor="end">{tick(low, span)}</text>',
        f'<text x="{left}" y="{bottom + 26}">0</text>',
        f'<text x="{left + PLOT_WIDTH}" y="{bottom + 26}" text-anchor="end">step {steps - 1}'
        "</text>",
    ]
    for k, mark in enumerate(marks):
        y = py(mark)
        parts.append(
            f'<line x1="{left}" x2="{left + PLOT_WIDTH}" y1="{y}" y2="{y}" '
            f'stroke="{COLORS[k % len(COLORS)]}" stroke-dasharray="10 8"/>'
        )
    for k, line in enumerate(lines):
        points = " ".join(
            f"{px(s)},{py(v)}" for s, v in zip(x, line, strict=True) if math.isfinite(v)
        )
        parts.append(f'<polyline points="{points}" stroke="{COLORS[k % len(COLORS)]}"/>')
    return "".join(parts)


def curves_svg(reward: np.ndarray, achieved: np.ndarray, areas: list[float], jitter: bool) -> str:
    """A pair's reward and achieved area over its steps (K×T each) as inline SVG: binned
    (:func:`step_bins`), each plot scaled to its own values (the achieved-area plot to them
    and the requested areas, drawn dashed). Text, no picture file: a report of thousands of
    pairs draws it in well under a millisecond per pair."""
    steps = reward.shape[-1]
    x, reward_bins = step_bins(reward, jitter)
    _, achieved_bins = step_bins(achieved, jitter)
    return (
        f'<svg class="curves" viewBox="0 0 {SVG_WIDTH} {SVG_HEIGHT}" width="{SVG_WIDTH // 2}" '
        f'height="{SVG_HEIGHT // 2}" role="img" aria-label="reward and achieved area over steps"'
        ' fill="none" stroke-width="3" font-size="22">'
        + _plot_svg(PLOT_LEFTS[0], "reward", x, reward_bins, steps, [])
        + _plot_svg(
            PLOT_LEFTS[1], "achieved area (dashed: requested)", x, achieved_bins, steps, areas
        )
        + "</svg>"
    )


def histograms_png(
    area_error: np.ndarray,
    rewards: np.ndarray,
    iou: np.ndarray,
    areas: list[float],
    caveat: str = "",
) -> bytes:
    """Histograms across masks: achieved − requested area and reward (P×K, one colour per
    area), and IoU with the ground truth (P, one per pair; the panel is left out when no
    pair has ground truth; ``caveat``, e.g. how many masks did not converge, under its
    title)."""
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
        title = "IoU with ground truth (largest area)" + (f"\n{caveat}" if caveat else "")
        axes[2].set(title=title, ylabel="pairs")
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
    right.set(title="achieved area (dashed: requested)", xlabel="step")
    right.set_ylim(*_value_range(achieved, areas))  # the data's range, not 0–1: see the settling
    left.legend(fontsize=7)
    fig.tight_layout()
    return figure_png(fig)
