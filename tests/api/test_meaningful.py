"""meaningful_perturbation (api/meaningful): known answers on hand-built models, the λ₁
trade-off, the model left as given, bad options named."""

from __future__ import annotations

import pytest
import torch

from lightning_extremal import meaningful_perturbation
from tests.helpers import BoxModel, assert_model_unchanged, box_scene, model_state

BOX = (8, 8, 12, 12)  # top, left, height, width: on the 8×8 grid's cell borders at 32 px
#: Small and exact: one 4-px cell per coarse parameter, a blur that reaches the background,
#: no jitter and no TV, so the objective is linear in the parameters and its optimum is
#: known (a cell is deleted iff deleting it lowers the score by more than λ₁ per pixel).
EXACT = {
    "grid": 8,
    "blur_sigma": 4.0,
    "max_iter": 40,
    "jitter": 0,
    "tv_coeff": 0.0,
    "score": "logit",
    "progress": False,
}


def _box() -> torch.Tensor:
    inside = torch.zeros(32, 32, dtype=torch.bool)
    top, left, height, width = BOX
    inside[top : top + height, left : left + width] = True
    return inside


def test_deletes_the_box_the_classifier_reads_and_leaves_the_model_as_given():
    model = BoxModel(32, BOX).train()  # a training flag the method must restore
    before = model_state(model)
    result = meaningful_perturbation(model, box_scene(32, BOX), 0, 1e-2, **EXACT)
    assert_model_unchanged(model, before)
    deletion, inside = result.masks[0, 0], _box()
    assert result.masks.shape == (1, 1, 32, 32) and result.l1_coeffs.tolist() == [1e-2]
    top = deletion.flatten().topk(int(inside.sum())).indices
    chosen = torch.zeros(32 * 32, dtype=torch.bool)
    chosen[top] = True
    iou = (chosen & inside.flatten()).sum() / (chosen | inside.flatten()).sum()
    assert iou >= 0.9, iou
    assert deletion[10:18, 10:18].min() >= 0.99  # the box's interior is blurred away
    far = torch.ones(32, 32, dtype=torch.bool)
    far[4:24, 4:24] = False
    assert deletion[far].max() == 0  # the model reads nothing there: nothing is deleted
    assert result.achieved_areas[0, 0].item() == pytest.approx(deletion.mean().item())
    # the score fell: the box's brightness went to its blur
    assert result.scores[0, 0] < result.history["score"][0, 0, 0] - 1


def test_larger_l1_coeff_deletes_less():
    coeffs = [1e-4, 3e-3, 1e-2, 2e-2, 3e-2, 1e-1]
    result = meaningful_perturbation(BoxModel(32, BOX), box_scene(32, BOX), 0, coeffs, **EXACT)
    areas = result.achieved_areas[0].tolist()
    assert all(a > b for a, b in zip(areas[:-2], areas[1:-1], strict=True)), areas
    assert areas[-1] == 0  # λ₁ above every pixel's gain: nothing is worth deleting
    assert result.history["deleted_area"].shape == (1, len(coeffs), EXACT["max_iter"])


def test_same_seed_same_masks_with_jitter(tiny_classifier, small_images):
    options = {"grid": 5, "max_iter": 4, "jitter": 3, "progress": False, "seed": 3}
    before = model_state(tiny_classifier)
    first = meaningful_perturbation(tiny_classifier, small_images[:2], [0, 1], **options)
    assert_model_unchanged(tiny_classifier, before)  # weights, requires_grad, hooks, modes
    again = meaningful_perturbation(tiny_classifier, small_images[:2], [0, 1], **options)
    assert torch.equal(first.masks, again.masks)
    split = meaningful_perturbation(
        tiny_classifier, small_images[:2], [0, 1], **{**options, "jitter": 0, "batch_size": 1}
    )
    whole = meaningful_perturbation(
        tiny_classifier, small_images[:2], [0, 1], **{**options, "jitter": 0}
    )
    torch.testing.assert_close(split.masks, whole.masks)  # a mask's fit is its own


def test_non_finite_scores_name_the_images(small_images):
    from lightning_extremal.errors import UnexplainableModelError
    from tests.helpers import nan_classifier

    with pytest.raises(UnexplainableModelError, match=r"not finite.*step 0.*image\(s\) \[0, 1\]"):
        meaningful_perturbation(nan_classifier(), small_images[:2], 0, max_iter=2, progress=False)


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"max_iters": 3}, TypeError, ["'max_iters'", "max_iter"]),
        ({"compile": True}, TypeError, ["'compile'", "valid options"]),
        ({"l1_coeffs": [-1.0]}, ValueError, ["l1_coeffs", "-1.0"]),
        ({"l1_coeffs": []}, ValueError, ["l1_coeffs", "non-empty"]),
        ({"score": "prob"}, ValueError, ["score", "'prob'", "softmax"]),
        ({"jitter": 1.5}, ValueError, ["jitter", "1.5"]),
        ({"init": 2}, ValueError, ["init", "[0, 1]"]),
        ({"batch_size": 0}, ValueError, ["batch_size", "0"]),
    ],
)
def test_bad_options_are_named(tiny_classifier, small_images, options, error, words):
    with pytest.raises(error) as raised:
        meaningful_perturbation(tiny_classifier, small_images, 0, **options)
    assert all(w in str(raised.value) for w in words), str(raised.value)
