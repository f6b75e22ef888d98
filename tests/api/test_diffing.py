"""Activation diffing (api/diffing) on tiny hand-built networks."""

from __future__ import annotations

import torch

from lightning_extremal import activation_diff
from tests.helpers import ChannelNet, TinyConvNet
from tests.helpers import random_images as _images


def test_activation_diff_of_an_image_with_itself_is_empty():
    model, x = ChannelNet(), _images(1)
    diff = activation_diff(
        model,
        "act",
        torch.cat([x, x]),
        0,
        area=2,
        progress=False,
        attribution={"max_iter": 100},
        inversion={"max_iter": 5},
    )
    assert diff.top_channels == [[2, 5], [2, 5]] or diff.top_channels == [[5, 2], [5, 2]]
    (same,) = diff.comparisons
    assert same.empty and same.shared == [2, 5]
    assert same.first_only is None and same.second_only is None
    assert diff.full.shape == diff.attributed.shape == diff.difference.shape == (2, 3, 16, 16)


def test_activation_diff_of_two_images_names_the_differing_channels():
    model = TinyConvNet()
    x = _images(2)
    masks = torch.zeros(2, 8)
    masks[0, [0, 1, 2]] = 1
    masks[1, [2, 3, 4]] = 1
    diff = activation_diff(
        model,
        "features.2",
        x,
        [0, 0],
        area=3,
        channel_masks=masks,
        progress=False,
        inversion={"max_iter": 3},
    )
    (pair,) = diff.comparisons
    assert (pair.shared, pair.only_first, pair.only_second) == ([2], [0, 1], [3, 4])
    assert pair.first_only.shape == pair.second_only.shape == (3, 16, 16)
