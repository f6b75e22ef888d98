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


def test_non_monotone_areas_names_where_a_curve_goes_the_wrong_way_beyond_the_tolerance():
    from lightning_extremal.api.analyses import non_monotone_areas

    areas = [0.01, 0.02, 0.05, 0.1, 0.2]
    # delete: falls, rises 0.3 above its lowest at 0.05 (flagged), 0.04 at 0.2 (within 0.05)
    assert non_monotone_areas(areas, [1.0, 0.5, 0.8, 0.3, 0.34], rising=False) == [0.05]
    # against the lowest so far, not the previous value: two small rises add up
    assert non_monotone_areas(areas, [1.0, 0.5, 0.54, 0.58, 0.2], rising=False) == [0.1]
    # preserve: rises; a drop of 0.2 below the best at 0.02 and 0.05; NaN skipped
    assert non_monotone_areas(areas, [0.2, 0.9, 0.7, math.nan, 1.0], rising=True) == [0.05]
    assert non_monotone_areas(areas, [0.2, 0.4, 0.6, 0.8, 1.0], rising=True) == []
    assert non_monotone_areas(areas, [1.0, 0.5, 0.8, 0.3, 0.34], False, tolerance=0.5) == []


def test_an_area_at_the_grids_floor_or_never_reached_is_a_bound():
    from lightning_extremal.api.analyses import area_bound
    from lightning_extremal.naming import bounded_text

    areas = [0.01, 0.1, 0.5]
    # a hand-built falling delete curve already below 0.5 at the smallest area: ≤ 0.01
    necessary = crossing_area(areas, [0.3, 0.2, 0.1], 0.5, False, True)
    assert necessary == 0.01 and area_bound(necessary, areas) == "upper"
    assert bounded_text(necessary, "upper", areas) == "≤ 0.01"
    # reached between grid areas: a value, no bound
    between = crossing_area(areas, [0.9, 0.6, 0.2], 0.5, False, True)
    assert 0.1 < between < 0.5 and area_bound(between, areas) is None
    assert bounded_text(between, None, areas) == f"{between:.3g}"
    # never reached within the grid: > 0.5
    never = crossing_area(areas, [0.9, 0.8, 0.7], 0.5, False, True)
    assert area_bound(never, areas) == "lower" and bounded_text(never, "lower", areas) == "> 0.5"
    assert area_bound(math.nan, areas) is None and area_bound(None, areas) is None


def test_the_games_share_one_warm_start_and_give_the_same_masks_as_separate_fits(monkeypatch):
    """Both games of an area curve start at the same Grad-CAM fit: computed once (one
    Grad-CAM call), and the masks equal those of two independent fits."""
    import lightning_extremal.modules.image_masks as image_masks
    from lightning_extremal import extremal_perturbation
    from tests.helpers import TinyConvNet

    model, images = (
        TinyConvNet(),
        torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(1)),
    )
    options = dict(max_iter=2, step=4, sigma=4.0, warm_start="grad_cam", progress=False)
    grid = [0.1, 0.3]
    separate = {
        game: extremal_perturbation(model, images, 0, grid, variant=game, **options)
        for game in ("preserve", "delete")
    }
    calls, real = [], image_masks.grad_cam
    monkeypatch.setattr(image_masks, "grad_cam", lambda *a, **k: calls.append(1) or real(*a, **k))
    lines = []
    curve = area_curve(model, images, 0, grid, say=lines.append, **options)
    assert len(calls) == 1  # one warm start for two games
    for game, result in separate.items():
        assert torch.equal(curve.masks[game], result.masks), game
        assert curve.converged[game].shape == (1, len(grid))
    assert lines[0] == "game 1/2 (preserve): 1 image(s) × 2 areas, 2 steps…"
    assert lines[2] == "game 2/2 (delete): 1 image(s) × 2 areas, 2 steps…"
    for line, game in ((lines[1], "1/2 (preserve)"), (lines[3], "2/2 (delete)")):
        assert line.startswith(f"game {game} done in ") and line.endswith("/2 masks unconverged)")
