"""What "converged" means (ops/convergence): a relative area tolerance with a floor of one
mask parameter's share, and a reward that stopped moving — on hand-built histories whose
answers are known."""

from __future__ import annotations

import pytest
import torch

from lightning_extremal.ops.convergence import (
    area_reached,
    area_tolerance,
    converged,
    reward_stalled,
    stall_window,
    step_pair_means,
)

#: One parameter's share of a demo mask: a 19×19 grid (128 px, step 7).
DEMO_CELL = 1 / 19**2


def _flipped(levels: torch.Tensor, gap: float = 0.6) -> torch.Tensor:
    """A jittered reward history: ``levels`` (…×T) with ``gap`` added on even steps, as the
    flipped image scores on every other step."""
    steps = torch.arange(levels.shape[-1])
    return levels + gap * (steps % 2 == 0)


def test_area_tolerance_is_a_fifth_of_the_area_but_never_below_one_parameter():
    requested = torch.tensor([0.05, 0.1, 0.3])
    assert area_tolerance(requested, DEMO_CELL).tolist() == pytest.approx([0.01, 0.02, 0.06])
    # A 4×4 layer grid: one cell (0.0625) is coarser than a fifth of any of these areas.
    assert area_tolerance(requested, 1 / 16).tolist() == pytest.approx([0.0625] * 3)


def test_area_reached_is_relative_where_the_old_absolute_005_passed_anything():
    requested = torch.tensor([0.05, 0.05, 0.05, 0.05, 0.3, 0.3])
    achieved = torch.tensor([0.059, 0.061, 0.0, 0.1, 0.35, 0.37])
    assert area_reached(achieved, requested, DEMO_CELL).tolist() == [
        True, False, False, False, True, False,
    ]  # fmt: skip
    old = (achieved - requested).abs() <= 0.05
    assert old.tolist() == [True, True, True, True, True, False]


def test_stall_window_is_a_tenth_of_the_run_even_and_at_least_four():
    assert [stall_window(t) for t in (3, 8, 50, 101, 200, 800)] == [4, 4, 6, 12, 20, 80]


def test_step_pair_means_cancel_the_flip_and_drop_an_odd_first_step():
    rewards = _flipped(torch.full((7,), 1.0))
    assert step_pair_means(rewards).tolist() == pytest.approx([1.3, 1.3, 1.3])
    assert step_pair_means(torch.arange(6.0)).tolist() == [0.5, 2.5, 4.5]


def test_a_settled_reward_has_stalled_a_still_falling_one_has_not():
    t = torch.arange(200.0)
    settled = _flipped(2 + 3 * torch.exp(-t / 10))  # moved 3, then nothing for 150 steps
    linear = _flipped(5 - 0.01 * t)  # the last tenth moves 9/99 of the whole: 0.09 > 0.05
    constant = _flipped(torch.full((200,), 1.5))  # never moved: S = 0, M = 0
    assert reward_stalled(torch.stack([settled, linear, constant])).tolist() == [
        True, False, True,
    ]  # fmt: skip
    # Sign-free: the delete game's rewards are the negated scores.
    assert reward_stalled(-torch.stack([settled, linear])).tolist() == [True, False]


def _moving_at_the_end(amount: float, level: float = 1.0, drop: float = 1.0) -> torch.Tensor:
    """200 steps: a ``drop`` over the first 20, flat, then a linear rise of ``amount`` over
    the last 20 (the stall window)."""
    r = torch.full((200,), level)
    r[:20] = level + torch.linspace(drop, 0, 20)
    r[180:] = level + torch.linspace(0, amount, 20)
    return _flipped(r)


def test_movement_over_the_last_tenth_against_five_percent_of_the_run():
    # Pair means: the window's rise is 18/19·a, the run's excursion S = 37/38 (its first
    # pair), so M/S = 36a/37 — under 0.05 for a = 0.04, over it for a = 0.07.
    histories = torch.stack([_moving_at_the_end(a) for a in (0.04, 0.07)])
    pairs = step_pair_means(histories)
    moved = pairs[:, -10:].amax(-1) - pairs[:, -10:].amin(-1)
    spread = pairs.amax(-1) - pairs.amin(-1)
    assert (moved / spread).tolist() == pytest.approx([36 * 0.04 / 37, 36 * 0.07 / 37])
    assert reward_stalled(histories).tolist() == [True, False]


def test_a_reward_that_barely_moved_is_judged_by_its_value():
    # S tiny (the warm start placed it): a wobble of 5e-4 on a reward of 4 is 1.25e-4 of it.
    wobble = _moving_at_the_end(5e-4, level=4.0, drop=6e-4)
    # The same wobble on a reward near 0.1 is 5e-3 of it, and most of its tiny excursion.
    small = _moving_at_the_end(5e-4, level=0.1, drop=6e-4)
    assert reward_stalled(torch.stack([wobble, small])).tolist() == [True, False]


def test_a_run_too_short_for_two_windows_never_stalls():
    for steps in (3, 7):
        assert not reward_stalled(_flipped(torch.ones(2, steps))).any()
    assert reward_stalled(_flipped(torch.ones(2, 8))).all()


def test_converged_needs_both_the_area_and_the_stall_and_keeps_the_shape():
    steps = 200
    flat = _flipped(torch.ones(steps))
    falling = _flipped(5 - 0.01 * torch.arange(float(steps)))
    rewards = torch.stack([torch.stack([flat, flat]), torch.stack([falling, flat])])  # P×K×T
    requested = torch.tensor([0.1, 0.2], dtype=torch.float64)
    achieved = torch.tensor([[0.11, 0.25], [0.1, 0.2]])
    done = converged(achieved, requested, rewards, DEMO_CELL)
    assert done.dtype == torch.bool and done.shape == (2, 2)
    # (0,1): area 0.25 is 25 % off; (1,0): reward still falling.
    assert done.tolist() == [[True, False], [False, True]]


def test_a_default_length_run_that_settled_late_has_stalled():
    """The default 200 steps as measured on the demo images: λ reaches 5000 at the last step
    and the slowest demo mask dropped 0.58 at step 176, then moved under 0.002; the window is
    steps 180–199, so that mask passes — and fails when it is still dropping at step 185."""
    r = torch.full((200,), 0.85)
    r[:10] += torch.linspace(0.7, 0.0, 10)
    late = r.clone()
    r[170:177] += torch.linspace(0.3, 0.0, 7)
    r[177:] += 0.0008 * torch.sin(torch.arange(23.0))
    late[170:186] += torch.linspace(0.3, 0.0, 16)
    assert reward_stalled(_flipped(torch.stack([r, late]), gap=0.43)).tolist() == [True, False]
