"""When a mask has converged: its area reached the requested one (relative tolerance) and its
reward stopped moving over the last steps of the optimisation."""

from __future__ import annotations

import math

import torch

#: Relative area tolerance ``ρ``: a mask of area ``a`` passes within ``ρ·a`` of it (0.08–0.12
#: at area 0.1, 0.04–0.06 at 0.05). The absolute 0.05 it replaces let anything from 0 to 0.10
#: pass at area 0.05; ``ρ = 0.2`` is a fifth of the area, as strict at every area. Measured on
#: the demo images: the default 200-step run ends at most 9.4 % of its area off (0.0906 for
#: 0.1), so a finished default run passes with twice that to spare. After 3 steps from the
#: Grad-CAM warm start 7 of 8 masks are already within ρ (4–20 % off): the area alone cannot
#: tell a finished mask from a started one, hence the second criterion, the reward's stall.
AREA_RTOL = 0.2
#: Reward stall: the last ``STALL_FRACTION`` of the steps (at least :data:`STALL_MIN_WINDOW`,
#: an even count), judged against the run's whole history (:func:`reward_stalled`).
STALL_FRACTION = 0.1
STALL_MIN_WINDOW = 4
#: ... moved by at most this fraction of the reward's whole excursion over the run ...
STALL_RTOL = 0.05
#: ... or by at most this fraction of the reward itself (a reward that barely moved at all:
#: the warm start already had it).
STALL_VALUE_RTOL = 1e-3


def area_tolerance(requested: torch.Tensor, cell: float) -> torch.Tensor:
    """``max(ρ·a, cell)`` per requested area ``a`` (float64): :data:`AREA_RTOL` of the area,
    but never below ``cell``, the share of a mask one of its parameters stands for
    (``1/#parameters``: a parameter cell of an input mask's grid, one channel, one cell of a
    layer's grid). The masks move by parameters: an error below one parameter's share is
    rounding, not an unreached area — on a 4×4 layer grid a cell is 0.0625, above ``ρ·a`` for
    every area under 0.31."""
    return torch.clamp(AREA_RTOL * requested.double(), min=float(cell))


def area_reached(achieved: torch.Tensor, requested: torch.Tensor, cell: float) -> torch.Tensor:
    """``|achieved − a| ≤ max(ρ·a, cell)`` elementwise (bool), see :func:`area_tolerance`."""
    error = (achieved.double() - requested.double()).abs()
    return error <= area_tolerance(requested, cell)


def stall_window(steps: int) -> int:
    """The window ``w`` of :func:`reward_stalled` for a run of ``steps`` steps: the even number
    at or above ``STALL_FRACTION·steps``, at least :data:`STALL_MIN_WINDOW`."""
    window = max(STALL_MIN_WINDOW, math.ceil(STALL_FRACTION * steps))
    return window + window % 2


def step_pair_means(rewards: torch.Tensor) -> torch.Tensor:
    """Means of consecutive steps, counted from the last (an odd first step is dropped),
    …×⌊T/2⌋ float64. With jitter on, every other step sees the image flipped and the reward
    alternates between two levels (0.6 apart on the demo images); each pair holds one of
    each, so the pairs' means move only when the masks do."""
    r = rewards.double()[..., rewards.shape[-1] % 2 :]
    return r.reshape(*r.shape[:-1], -1, 2).mean(-1)


def reward_stalled(rewards: torch.Tensor) -> torch.Tensor:
    """Whether each mask's reward has stopped moving, from its per-step history (bool).

    ``rewards`` …×T (one row per mask over its T steps, as ``ExtremalResult.history["reward"]``),
    ``q`` their :func:`step_pair_means`, ``w`` = :func:`stall_window` (T). Over the last
    ``w`` steps (``w/2`` pairs) the reward moved ``M = max q − min q``, around ``q̄``; over the
    whole run ``S = max q − min q``. Stalled iff

        ``M ≤ max(τ·S, ε·|q̄|)``   (τ = :data:`STALL_RTOL` = 0.05, ε = :data:`STALL_VALUE_RTOL` = 10⁻³)

    — the last tenth of the run moved the reward by at most 5 % of all the run moved it (a
    reward still falling at its average rate moves 10 %), or by at most 0.1 % of its value (a
    reward the warm start had already placed barely moves at all; its ``S`` is tiny).
    Scale-free (logits or probabilities) and sign-free (preserve and delete games). Measured
    on the demo images: after the default 200 steps 5 of the 8 masks have ``M/S ≤ 0.042``
    and the other 3 (tiny ``S``: the warm start had placed them) ``M/|q̄| ≤ 4.8·10⁻⁴``; after
    the quick preset's 50 steps 6 of 16 masks still move (``M/S`` 0.15–0.63, ``M/|q̄|``
    0.015–0.71). A run shorter than ``2w`` steps cannot show a stall: False.
    """
    steps = rewards.shape[-1]
    window = stall_window(steps)
    if steps < 2 * window:
        return torch.zeros(rewards.shape[:-1], dtype=torch.bool)
    pairs = step_pair_means(rewards)
    last = pairs[..., -window // 2 :]
    moved = last.amax(-1) - last.amin(-1)
    spread = pairs.amax(-1) - pairs.amin(-1)
    allowed = torch.maximum(STALL_RTOL * spread, STALL_VALUE_RTOL * last.mean(-1).abs())
    return moved <= allowed


def converged(
    achieved: torch.Tensor, requested: torch.Tensor, rewards: torch.Tensor, cell: float
) -> torch.Tensor:
    """A mask converged when both hold: its area is reached (:func:`area_reached`:
    ``|achieved − a| ≤ max(ρ·a, cell)``) and its reward has stalled (:func:`reward_stalled`
    of its history ``rewards``, …×T). ``achieved``, ``requested`` broadcast to ``rewards``'
    leading shape; bool."""
    return area_reached(achieved, requested, cell) & reward_stalled(rewards)


def describe() -> str:
    """What "converged" means, in words, for the run's console line."""
    return (
        f"area within max({AREA_RTOL:g}·area, one parameter's share) of the requested one and "
        f"reward stalled over the last {STALL_FRACTION:.0%} of steps"
    )


def unconverged_text(unconverged: int, masks: int) -> str:
    """``3/16 masks unconverged``: the count written beside a score of those masks."""
    return f"{unconverged}/{masks} masks unconverged"
