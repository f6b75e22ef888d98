"""Rewards against their definitions (ops/rewards)."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_extremal.ops.rewards import (
    contrastive_reward,
    get_reward,
    mean_reward,
    simple_reward,
)


def test_simple_and_contrastive_rewards() -> None:
    logits = torch.tensor([[1.0, 5.0, 2.0], [3.0, -1.0, 0.5]])
    targets = torch.tensor([1, 2])
    assert simple_reward(logits, targets).tolist() == [5.0, 0.5]
    # target − best other class
    assert contrastive_reward(logits, targets).tolist() == [3.0, -2.5]
    assert get_reward("simple") is simple_reward
    assert get_reward("contrastive") is contrastive_reward


def test_rewards_on_spatial_outputs_are_averaged() -> None:
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 4, 3, 5, generator=g)  # fully convolutional B×C×h×w
    targets = torch.tensor([3, 0])
    simple = simple_reward(logits, targets)
    assert simple.shape == (2, 3, 5)
    torch.testing.assert_close(simple, logits[torch.arange(2), targets])
    torch.testing.assert_close(
        mean_reward(simple_reward, logits, targets), logits[torch.arange(2), targets].mean((1, 2))
    )
    others = logits.clone()
    others[torch.arange(2), targets] = -math.inf
    expected = logits[torch.arange(2), targets] - others.amax(1)
    torch.testing.assert_close(contrastive_reward(logits, targets), expected)
    torch.testing.assert_close(
        mean_reward(contrastive_reward, logits, targets), expected.mean((1, 2))
    )


def test_get_reward() -> None:
    fn = lambda logits, t: logits[:, 0]  # noqa: E731
    assert get_reward(fn) is fn
    with pytest.raises(ValueError, match="'bogus'"):
        get_reward("bogus")
