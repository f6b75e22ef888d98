"""The analyses' Python API (api/analyses.py, ops/sufficiency.py) on planted models whose
answers are known: a box classifier's sufficient area is the box's; a model summing per-object
evidence is exactly cumulative, one taking the max is not."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_extremal import area_curve, object_contributions, object_coverage
from lightning_extremal.api.analyses import largest_objects, object_subsets
from lightning_extremal.ops.sufficiency import crossing_area, log_areas, normalised
from tests.helpers import BoxModel, ObjectEvidenceModel, box_scene, boxes_scene

SIZE, BOX = 24, (6, 6, 8, 8)  # the box covers 64 / 576 = 0.111 of the image
BOX_AREA = BOX[2] * BOX[3] / SIZE**2
GRID = [0.02, 0.05, 0.08, 0.11, 0.15, 0.25, 0.5]
#: Sharp masks (1 px grid, σ 1 px) and fade (level 0 is black): what the box model sees.
SHARP = dict(max_iter=60, step=1, sigma=1.0, perturbation="fade", warm_start="none", progress=False)


def test_crossing_area_interpolates_in_log_area_and_says_when_never_reached():
    areas = [0.01, 0.1, 1.0]
    assert crossing_area(areas, [0.2, 0.5, 1.0], 0.75, True, True) == pytest.approx(10**-0.5)
    assert crossing_area(areas, [0.2, 0.5, 1.0], 0.75, True, False) == 1.0
    assert crossing_area(areas, [0.9, 0.95, 1.0], 0.5, True, True) == 0.01  # no extrapolation
    assert crossing_area(areas, [0.2, 0.3, 0.4], 0.5, True, True) == math.inf
    assert crossing_area(areas, [0.9, 0.4, 0.1], 0.5, False, False) == 0.1  # falling: delete
    assert math.isnan(crossing_area(areas, [math.nan] * 3, 0.5, True, True))


def test_normalised_is_nan_where_the_full_score_is_not_positive():
    ratio = normalised(torch.tensor([[1.0, 2.0], [1.0, 2.0]]), torch.tensor([2.0, -1.0]))
    assert ratio[0].tolist() == [0.5, 1.0] and ratio[1].isnan().all()
    assert log_areas(0.01, 0.5, 8)[0] == 0.01 and log_areas(0.01, 0.5, 8)[-1] == 0.5


@pytest.mark.slow
def test_box_model_sufficient_area_is_the_box_area_and_necessary_area_half_of_it():
    model = BoxModel(SIZE, BOX)
    curve = area_curve(
        model, box_scene(SIZE, BOX), 0, GRID, score="reward", preserve_fraction=0.95, **SHARP
    )
    preserve, delete = curve.curves["preserve"][0], curve.curves["delete"][0]
    # The score is linear in the kept brightness of the box: below the box's area no mask
    # keeps 95 % of it, and from one grid step above the box's area on a mask does.
    assert preserve[GRID.index(0.08)] < 0.95 <= preserve[GRID.index(0.15)]
    (sufficient,) = curve.sufficient_area.tolist()
    assert GRID[GRID.index(0.08)] < sufficient <= GRID[GRID.index(0.15)]
    assert abs(sufficient - BOX_AREA) < 0.04  # within a grid step of the box's 0.111
    (necessary,) = curve.necessary_area.tolist()  # deleting half the box halves the score
    assert 0.05 <= necessary <= 0.08 and abs(necessary - BOX_AREA / 2) < 0.02
    assert preserve.diff().min() > -0.02 and delete.diff().max() < 0.02  # monotone up to noise
    assert curve.masks["preserve"].shape == (1, len(GRID), SIZE, SIZE)
    assert curve.full_scores.tolist() == pytest.approx([float(model(box_scene(SIZE, BOX))[0, 0])])


def test_probability_score_and_a_level_never_reached():
    model = BoxModel(SIZE, BOX)
    curve = area_curve(model, box_scene(SIZE, BOX), 0, [0.02, 0.05], games=["preserve"], **SHARP)
    assert curve.score == "prob" and curve.necessary_area is None
    assert 0.5 < float(curve.full_scores[0]) < 1  # softmax of (score, 0)
    assert curve.sufficient_area.tolist() == [math.inf]  # 5 % of the image hides the box


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(areas=[0.1, 1.5]), "analysis.areas must be fractions in (0, 1]; got 1.5"),
        (dict(areas=[0.2, 0.1]), "at least 2 increasing fractions"),
        (dict(score="logit"), "analysis.score must be one of ['prob', 'reward']; got 'logit'"),
        (dict(games=["keep"]), "games of ['preserve', 'delete']; got ['keep']"),
    ],
)
def test_bad_analysis_arguments_name_the_value_and_the_allowed_ones(kwargs, message):
    with pytest.raises(ValueError) as error:
        area_curve(BoxModel(SIZE, BOX), box_scene(SIZE, BOX), 0, **{"areas": GRID, **kwargs})
    assert message in str(error.value)


BOXES = [(2, 2, 6, 6), (2, 14, 6, 6), (14, 8, 8, 8)]


@pytest.mark.parametrize("combine", ["sum", "max"])
def test_objects_of_a_summing_model_add_up_exactly_and_of_a_max_model_do_not(combine):
    x, masks = boxes_scene(SIZE, BOXES)
    model = ObjectEvidenceModel(SIZE, BOXES, combine)
    result = object_contributions(model, x, [masks], 0, perturbation="fade")
    kinds = [r["kind"] for r in result.rows]
    assert kinds == ["single"] * 3 + ["pair"] * 3 + ["all"]
    together = [r for r in result.rows if r["kind"] != "single"]
    if combine == "sum":
        for row in together:
            assert row["gain"] == pytest.approx(row["sum_of_parts"], rel=1e-5)
            assert row["ratio"] == pytest.approx(1.0, rel=1e-5)
        assert result.rows[-1]["score"] == pytest.approx(float(result.full_scores[0]), rel=1e-5)
    else:  # the best object alone already gives the score of all of them
        assert all(r["ratio"] < 0.75 for r in together)
        best = max(r["gain"] for r in result.rows if r["kind"] == "single")
        assert result.rows[-1]["gain"] == pytest.approx(best, rel=1e-5)
    assert float(result.blurred_scores[0]) == pytest.approx(0.0, abs=1e-6)  # fade: all black


def test_object_subsets_and_the_largest_objects():
    assert object_subsets(1) == [("single", (0,))]
    assert object_subsets(2) == [("single", (0,)), ("single", (1,)), ("all", (0, 1))]
    assert len(object_subsets(4)) == 4 + 6 + 1
    sizes = [torch.ones(2, 2), torch.zeros(2, 2), torch.ones(1, 3), torch.ones(3, 3)]
    assert largest_objects([s.bool() for s in sizes], 2) == [0, 3]


@pytest.mark.slow
def test_coverage_of_the_box_by_the_sufficient_area_mask():
    model = BoxModel(SIZE, BOX)
    x = box_scene(SIZE, BOX)
    curve = area_curve(
        model, x, 0, GRID, score="reward", games=["preserve"], preserve_fraction=0.95, **SHARP
    )
    box = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    box[BOX[0] : BOX[0] + BOX[2], BOX[1] : BOX[1] + BOX[3]] = True
    far = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    far[-3:, -3:] = True
    ((on_box, on_far),) = object_coverage(curve, [[box, far]])
    assert on_box > 0.9 and on_far < 0.1
