"""Channel areas of layer masks (ops/layer_masks): fractions or counts, and their validation."""

from __future__ import annotations

import pytest

from lightning_extremal.config import MethodConfig, validate_method
from lightning_extremal.ops.layer_masks import channel_counts


def test_channel_areas_are_fractions_or_counts():
    assert channel_counts([0.1, 0.25, 3, 8.0], 8) == [1, 2, 3, 8]
    with pytest.raises(ValueError, match="layer has 8 channels"):
        channel_counts([9], 8)
    with pytest.raises(ValueError, match="channel counts"):
        validate_method(MethodConfig(kind="channel", areas=[0.1, 3]))
    with pytest.raises(ValueError, match=r"open interval \(0, 1\); got 3"):
        validate_method(MethodConfig(kind="input", areas=[3]))
    with pytest.raises(ValueError, match="kind must be one of.*layer-spatial"):
        validate_method(MethodConfig(kind="neurons"))
    with pytest.raises(ValueError, match="layer='layer3' is set but kind is 'input'"):
        validate_method(MethodConfig(layer="layer3"))
