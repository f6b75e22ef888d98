"""Rewards: what the classifier's output scores for a target, before spatial averaging."""

from __future__ import annotations

from collections.abc import Callable

import torch

#: A reward maps ``(logits B×C×…, targets (B,))`` to ``B×…`` (extra dims are averaged).
RewardFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _target_index(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    shape = (-1, 1) + (1,) * (logits.dim() - 2)
    return targets.view(shape).expand(-1, 1, *logits.shape[2:])


def simple_reward(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``z_{b…} = y_{b, t_b, …}``: the target's score (B×C×… → B×…)."""
    return logits.gather(1, _target_index(logits, targets)).squeeze(1)


def contrastive_reward(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``z_{b…} = y_{b, t_b, …} − max_{c ≠ t_b} y_{b, c, …}`` (B×C×… → B×…)."""
    index = _target_index(logits, targets)
    target = logits.gather(1, index).squeeze(1)
    others = logits.scatter(1, index, float("-inf"))
    return target - others.amax(dim=1)


REWARDS: dict[str, RewardFn] = {"simple": simple_reward, "contrastive": contrastive_reward}


def get_reward(reward: str | RewardFn) -> RewardFn:
    """Resolve a reward name (``"simple"``, ``"contrastive"``) or pass a callable through."""
    if callable(reward):
        return reward
    if reward not in REWARDS:
        raise ValueError(f"reward must be a callable or one of {sorted(REWARDS)}; got {reward!r}")
    return REWARDS[reward]


def mean_reward(reward_fn: RewardFn, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Reward averaged over any spatial dims of a fully-convolutional output → (B,)."""
    reward = reward_fn(logits, targets)
    return reward.reshape(reward.shape[0], -1).mean(dim=1)
