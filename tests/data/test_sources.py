"""Image sources (data/sources)."""

from __future__ import annotations

import pytest


def test_dataset_root_is_required():
    from lightning_extremal.data.sources import open_source

    with pytest.raises(ValueError, match="data.root"):
        open_source("voc07", 64)
