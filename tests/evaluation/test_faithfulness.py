"""Faithfulness metrics (evaluation/faithfulness): AUCs, rank correlation, sanity checks."""

from __future__ import annotations

import copy

import pytest
import torch

from lightning_extremal.evaluation import baselines, faithfulness
from tests.helpers import BoxModel, TinyNet, box_scene
from tests.helpers import assert_model_unchanged as _assert_same
from tests.helpers import model_state as _state


def test_curve_auc_and_spearman():
    assert faithfulness.curve_auc(torch.ones(11)) == pytest.approx(1.0)
    assert faithfulness.curve_auc(torch.linspace(0, 1, 5)) == pytest.approx(0.5)
    a = torch.tensor([3.0, 1.0, 2.0, 2.0])
    assert faithfulness.average_ranks(a).tolist() == [4.0, 1.0, 2.5, 2.5]
    assert faithfulness.spearman(a, a * 2 + 1) == pytest.approx(1.0)
    assert faithfulness.spearman(a, -a) == pytest.approx(-1.0)


def test_deletion_and_insertion_prefer_the_evidence():
    size, box = 24, (6, 4, 8, 10)
    model, image = BoxModel(size, box), box_scene(size, box)[0]
    evidence = torch.zeros(size, size)
    evidence[6:14, 4:14] = 1.0
    evidence += 0.01 * torch.rand(size, size, generator=torch.Generator().manual_seed(0))
    good = faithfulness.deletion_auc(model, image, 0, evidence, steps=12)
    bad = faithfulness.deletion_auc(model, image, 0, -evidence, steps=12)
    assert good < bad
    good = faithfulness.insertion_auc(model, image, 0, evidence, steps=12)
    bad = faithfulness.insertion_auc(model, image, 0, -evidence, steps=12)
    assert good > bad
    curve = faithfulness.perturbation_curve(model, image, 0, evidence, "deletion", steps=12)
    assert curve.shape == (13,) and curve[0] > curve[-1]


def test_sanity_check_detects_a_randomised_model():
    model = TinyNet(6).eval()
    before = _state(model)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    gradient = faithfulness.model_randomisation_check(
        model, images, [0, 1], baselines.gradient_saliency, mode="full"
    )
    assert gradient.layers == ["all"] and gradient.spearman[0] < 0.6
    # A map that ignores the weights does not change at all: the check flags it (ρ = 1).
    center = faithfulness.model_randomisation_check(
        model, images, [0, 1], baselines.center_saliency, mode="cascading"
    )
    assert center.layers == ["classifier", "features.3", "features.0"]
    assert all(r == pytest.approx(1.0) for r in center.spearman)
    _assert_same(model, before)


def test_model_left_unchanged_by_copying_helpers():
    model = TinyNet(6).eval()
    before = _state(model)
    list(faithfulness.randomised_models(copy.deepcopy(model), "cascading"))
    list(faithfulness.randomised_models(model, "full"))
    _assert_same(model, before)
