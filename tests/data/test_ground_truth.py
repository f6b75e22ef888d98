"""Ground truth of the demo set and of folders of mask files (data/ground_truth)."""

from __future__ import annotations

import pytest
import torch

from lightning_extremal.data.synthetic import render_sample


def test_ground_truth_of_demo_and_folders(shapes, monkeypatch):
    from lightning_extremal.data import sources
    from lightning_extremal.data.ground_truth import load_ground_truth, pair_truth

    two = render_sample(0, size=64, multi_object=True)  # 2–3 objects of distinct classes
    monkeypatch.setattr(sources, "demo_ground_truth", lambda directory=None: [two.masks])
    objects = sources.open_source("demo", 32, crop=True).truth(0)
    assert len(objects) == len(two.labels) and objects[0].shape == (32, 32)
    # The pair's own object when the labels name its target, else all objects.
    second = pair_truth(objects, two.labels, two.labels[1])
    assert torch.equal(second, objects[1])
    others = [c for c in range(6) if c not in two.labels]
    assert torch.equal(pair_truth(objects, two.labels, others[0]), torch.stack(objects).any(0))
    assert pair_truth(None, None, 0) is None

    images, truth = shapes
    found = load_ground_truth(str(truth), ["shape0", "missing"], size=32, crop=True)
    assert found[0][0].shape == (32, 32) and found[0][0].any() and found[1] is None
    with pytest.raises(ValueError, match="data.ground_truth must be a folder"):
        load_ground_truth(str(truth / "nope"), ["shape0"], size=32, crop=True)
