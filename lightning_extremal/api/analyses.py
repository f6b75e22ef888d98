"""The paper's analyses in Python: the area curve with the sufficient and necessary areas, and
the contribution of each object, pair of objects and all objects against the sum of the parts.

The score Φ of an analysis is ``score="prob"`` (the softmax probability of the target) or
``score="reward"`` (the method's reward: the target's logit for ``reward="simple"``), averaged
over any spatial output dims; an image is seen through a mask the way the method sees it (the
mask blends the image with its blur pyramid: 1 keeps a pixel, 0 blurs it most).
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import torch

from ..config import AnalysisConfig, MethodConfig, validate_analysis
from ..engine.classifier import predicted_classes, probe_classes
from ..engine.inputs import check_images, resolve_targets
from ..ops.convergence import unconverged_text
from ..ops.frozen import frozen
from ..ops.perturbation import perturbation_pyramid
from ..ops.rewards import RewardFn, get_reward
from ..ops.sufficiency import crossing_area, masked_scores, normalised, probability_reward
from .extremal import extremal_perturbation
from .options import to_configs


@dataclass
class AreaCurve:
    """The area curve of P (image, target) pairs over the K areas of one batched fit per game.

    ``curves[game]`` P×K: ``Φ(m_a ⊗ x) / Φ(x)`` for ``preserve`` (the mask of area a kept, the
    rest blurred) and ``Φ((1 − m_a) ⊗ x) / Φ(x)`` for ``delete`` (the mask of area a blurred),
    NaN for a pair whose full score ``Φ(x)`` is not positive. ``masks[game]`` P×K×H×W the
    optimised masks (preserve: the kept region; delete: the deleted one); ``full_scores``
    (P,) Φ(x). ``sufficient_area`` (P,): the smallest area whose preserve curve reaches
    ``preserve_fraction``; ``necessary_area`` (P,): the smallest whose delete curve falls to
    ``delete_fraction`` (inf: not within the grid; NaN: no ratio; None: game not run).
    ``converged[game]`` P×K bool: the mask reached its area and its reward settled
    (:class:`~.extremal.ExtremalResult`); a curve of unconverged masks is not yet the area's.
    """

    areas: torch.Tensor
    image_index: torch.Tensor
    targets: torch.Tensor
    score: str
    full_scores: torch.Tensor
    curves: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    achieved_areas: dict[str, torch.Tensor]
    sufficient_area: torch.Tensor | None
    necessary_area: torch.Tensor | None
    preserve_fraction: float
    delete_fraction: float
    interpolate: bool
    converged: dict[str, torch.Tensor] = field(default_factory=dict)


#: How far (in normalised score) a curve may go the wrong way before it is flagged as not
#: monotone: below it, the wobble of masks optimised separately per area.
MONOTONE_TOLERANCE = 0.05


def non_monotone_areas(
    areas: Sequence[float],
    curve: Sequence[float],
    rising: bool,
    tolerance: float = MONOTONE_TOLERANCE,
) -> list[float]:
    """The areas where ``curve`` (one value per area, increasing areas) goes the wrong way by
    more than ``tolerance``: a preserve curve (``rising``) below the best value of a smaller
    area, a delete curve above the lowest one. An extremal mask of a larger area can keep (or
    delete) everything a smaller one does, so the true curves are monotone; a crossing like
    this says the masks are not yet optimal (more steps would help). NaN values are skipped."""
    flagged, best = [], None
    for area, value in zip(areas, curve, strict=True):
        if value is None or math.isnan(value):
            continue
        if best is not None and (best - value if rising else value - best) > tolerance:
            flagged.append(float(area))
        best = value if best is None else (max(best, value) if rising else min(best, value))
    return flagged


def area_bound(value: float | None, areas: Sequence[float]) -> str | None:
    """Whether a sufficient / necessary area is only a bound of the grid: ``"upper"`` when it
    is the grid's smallest area (the level is reached there already: the true area is ≤ it),
    ``"lower"`` when it is not reached within the grid (inf: the true area is > the largest),
    None for an area found between grid areas (or NaN / None: no area)."""
    if value is None or math.isnan(value):
        return None
    if math.isinf(value):
        return "lower"
    return "upper" if value <= areas[0] else None


class SharedWarmStart(L.Callback):
    """One warm start for several games of the same masks: the Grad-CAM start depends on the
    pairs, areas and mask settings, not on the game, so the first game's fits record where
    their masks started (at their first step, after the warm start's fit) and the next game's
    fits, run with ``warm_start="none"``, start there (in the same fit order). Saves one
    Grad-CAM and one warm-start fit (:data:`~..modules.image_masks.WARM_FIT_STEPS` steps of
    every mask) per extra game; the starts, hence the masks, are the same."""

    def __init__(self) -> None:
        self.starts: list[tuple[torch.Tensor, str]] = []
        self.replay = False
        self._fit = 0
        self._pending = False

    def on_train_start(self, trainer, pl_module) -> None:
        self._pending = trainer.global_step == 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if not self._pending:
            return
        self._pending = False
        if not self.replay:
            self.starts.append((pl_module.mask_params.detach().clone(), pl_module.start))
            return
        params, start = self.starts[self._fit]
        self._fit += 1
        with torch.no_grad():
            pl_module.mask_params.copy_(params.to(pl_module.mask_params.device))
        pl_module.start = start


@dataclass
class ObjectContributions:
    """Φ of each (image, target) pair seen through unions of its objects' ground-truth regions.

    ``rows``: one per pair and object subset (each object alone, each pair of objects when
    there are 3 or more, all objects), with ``objects`` (their indices), ``kind`` (single |
    pair | all), ``score`` Φ(S ⊗ x), ``normalised`` Φ(S ⊗ x)/Φ(x), ``gain`` Φ(S ⊗ x) − Φ(∅ ⊗ x)
    (what the subset adds to the fully blurred image), ``sum_of_parts`` Σ_{i∈S} gain_i and
    ``ratio`` gain / sum_of_parts (1: the objects contribute cumulatively). ``full_scores``
    and ``blurred_scores`` (P,): Φ(x) and Φ(∅ ⊗ x).
    """

    image_index: torch.Tensor
    targets: torch.Tensor
    score: str
    full_scores: torch.Tensor
    blurred_scores: torch.Tensor
    rows: list[dict[str, Any]]


def _score_fn(score: str, reward: str | RewardFn) -> RewardFn:
    return probability_reward if score == "prob" else get_reward(reward)


def _pyramid(images: torch.Tensor, cfg: MethodConfig, device) -> torch.Tensor:
    """The method's perturbation pyramid of ``images``."""
    return perturbation_pyramid(
        images.float().to(device), cfg.perturbation, cfg.num_levels, cfg.max_blur, cfg.blur_padding
    )


def _device(model: torch.nn.Module, images: torch.Tensor) -> torch.device:
    return next(iter(model.parameters()), images).device


def area_curve(
    model: torch.nn.Module,
    images: torch.Tensor,
    targets: Any = None,
    areas: Sequence[float] | None = None,
    *,
    score: str = "prob",
    games: Sequence[str] = ("preserve", "delete"),
    preserve_fraction: float = 1.0,
    delete_fraction: float = 0.5,
    interpolate: bool = True,
    reward: str | RewardFn = "simple",
    say: Callable[[str], None] | None = None,
    **options: Any,
) -> AreaCurve:
    """The area curve of ``images`` (N×C×H×W) for ``targets`` (as in
    :func:`~.extremal.extremal_perturbation`; None: each image's top class) over ``areas``
    (default :class:`~lightning_extremal.config.AnalysisConfig`'s 8 log-spaced from 0.01 to
    0.5): one batched :func:`~.extremal.extremal_perturbation` per game over all areas, then
    each mask's normalised score and the sufficient / necessary areas
    (:func:`~lightning_extremal.ops.sufficiency.crossing_area`). ``options`` go to
    ``extremal_perturbation`` (``max_iter``, ``step``, ``sigma``, ``seed``, …). The games
    share one warm start (:class:`SharedWarmStart`). ``say``: told a line as each game starts
    and ends (``game 1/2 (preserve): …``), for a job's progress.
    """
    areas = list(AnalysisConfig().areas if areas is None else areas)
    validate_analysis(
        AnalysisConfig(
            areas=areas,
            score=score,
            preserve_fraction=preserve_fraction,
            delete_fraction=delete_fraction,
            games=list(games),
        )
    )
    results = _play_games(model, images, targets, areas, list(games), reward, say, options)
    first = results[games[0]]
    score_fn = _score_fn(score, reward)
    with frozen(model):
        method, _, _ = to_configs(options, MethodConfig())
        pyramid = _pyramid(images, method, _device(model, images))
        ones = torch.ones(len(first.targets), 1, *images.shape[-2:])
        full = masked_scores(model, pyramid, ones, first.image_index, first.targets, score_fn)
        curves = {
            game: _curve(
                model, pyramid, r.masks if game == "preserve" else 1 - r.masks, r, score_fn, full
            )
            for game, r in results.items()
        }
    _warn_unnormalisable(full, score)
    return AreaCurve(
        areas=torch.tensor(areas, dtype=torch.float64),
        image_index=first.image_index,
        targets=first.targets,
        score=score,
        full_scores=full,
        curves=curves,
        masks={game: r.masks for game, r in results.items()},
        achieved_areas={game: r.achieved_areas for game, r in results.items()},
        sufficient_area=_crossings(areas, curves, "preserve", preserve_fraction, interpolate),
        necessary_area=_crossings(areas, curves, "delete", delete_fraction, interpolate),
        preserve_fraction=preserve_fraction,
        delete_fraction=delete_fraction,
        interpolate=interpolate,
        converged={game: r.converged for game, r in results.items()},
    )


def _play_games(model, images, targets, areas, games, reward, say, options) -> dict:
    """Each game's :func:`~.extremal.extremal_perturbation` over all ``areas``, the later
    games starting where the first one's warm start put the masks."""
    shared = SharedWarmStart()
    options = {**options, "callbacks": [*(options.get("callbacks") or []), shared]}
    steps = options.get("max_iter", MethodConfig().max_iter)
    results = {}
    for number, game in enumerate(games, 1):
        head = f"game {number}/{len(games)} ({game})"
        if say is not None:
            say(f"{head}: {len(images)} image(s) × {len(areas)} areas, {steps} steps…")
        start = time.perf_counter()
        kept = {"warm_start": "none"} if number > 1 and shared.starts else {}
        results[game] = extremal_perturbation(
            model, images, targets, areas, reward=reward, variant=game, **{**options, **kept}
        )
        shared.replay = True
        if say is not None:
            unconverged = int((~results[game].converged).sum())
            say(
                f"{head} done in {time.perf_counter() - start:.1f} s "
                f"({unconverged_text(unconverged, results[game].converged.numel())})"
            )
    return results


def _curve(model, pyramid, kept: torch.Tensor, result, score_fn, full) -> torch.Tensor:
    """Normalised scores P×K of the images seen through ``kept`` (P×K×H×W)."""
    pairs, k = kept.shape[:2]
    scores = masked_scores(
        model,
        pyramid,
        kept.reshape(pairs * k, 1, *kept.shape[2:]),
        result.image_index.repeat_interleave(k),
        result.targets.repeat_interleave(k),
        score_fn,
    )
    return normalised(scores.view(pairs, k).double(), full.double())


def _crossings(areas, curves, game: str, level: float, interpolate: bool) -> torch.Tensor | None:
    if game not in curves:
        return None
    rising = game == "preserve"
    return torch.tensor(
        [crossing_area(areas, row.tolist(), level, rising, interpolate) for row in curves[game]],
        dtype=torch.float64,
    )


def _warn_unnormalisable(full: torch.Tensor, score: str) -> None:
    bad = (~(full > 0)).nonzero().flatten().tolist()
    if bad:
        warnings.warn(
            f"pair(s) {bad} have a full-image {score} score ≤ 0, so Φ(m ⊗ x)/Φ(x) means nothing: "
            "their curves and areas are NaN (score='prob' is always positive)",
            RuntimeWarning,
            stacklevel=3,
        )


def object_subsets(count: int) -> list[tuple[str, tuple[int, ...]]]:
    """``(kind, objects)`` of the subsets of ``count`` objects that an analysis scores: each
    object alone, each pair when there are 3 or more (with 2 the pair is all of them), and all
    of them when there are 2 or more."""
    subsets = [("single", (i,)) for i in range(count)]
    if count >= 3:
        subsets += [("pair", pair) for pair in itertools.combinations(range(count), 2)]
    if count >= 2:
        subsets.append(("all", tuple(range(count))))
    return subsets


def largest_objects(objects: Sequence[torch.Tensor], limit: int) -> list[int]:
    """Indices of the ``limit`` largest non-empty masks of ``objects`` (in their order)."""
    sizes = [(int(m.sum()), i) for i, m in enumerate(objects) if bool(m.any())]
    keep = sorted(sorted(sizes, reverse=True)[:limit], key=lambda s: s[1])
    return [i for _, i in keep]


def object_contributions(
    model: torch.nn.Module,
    images: torch.Tensor,
    objects: Sequence[Sequence[torch.Tensor]],
    targets: Any = None,
    *,
    score: str = "reward",
    reward: str | RewardFn = "simple",
    max_objects: int = 4,
    **options: Any,
) -> ObjectContributions:
    """Φ of each (image, target) pair with only object subsets kept (the rest blurred, as the
    method perturbs: ``options`` ``perturbation``, ``max_blur``, …): each object's ground-truth
    region (``objects[n]``: H×W bool masks of image n; at most the ``max_objects`` largest),
    each pair, all, and none. ``targets`` as in :func:`~.extremal.extremal_perturbation`."""
    check_images(images)
    validate_analysis(AnalysisConfig(score=score, max_objects=max_objects))
    method, _, _ = to_configs(options, MethodConfig())  # an unknown option: a TypeError
    if len(objects) != len(images):
        raise ValueError(f"got object lists for {len(objects)} images, not {len(images)}")
    with frozen(model):
        if targets is None:
            targets = predicted_classes(model, images).tolist()
        image_index, classes = resolve_targets(targets, len(images), probe_classes(model, images))
        pyramid = _pyramid(images, method, _device(model, images))
        plan = _subset_masks(objects, image_index, max_objects, images.shape[-2:])
        masks = torch.stack([m for _, _, _, m in plan])[:, None]
        pairs = torch.tensor([p for p, _, _, _ in plan])
        scores = masked_scores(
            model, pyramid, masks, image_index[pairs], classes[pairs], _score_fn(score, reward)
        )
    rows, full, blurred = _contribution_rows(plan, scores, len(classes))
    for row in rows:
        row.update(image=int(image_index[row["pair"]]), target=int(classes[row["pair"]]))
    return ObjectContributions(image_index, classes, score, full, blurred, rows)


def _subset_masks(objects, image_index, limit: int, size) -> list[tuple]:
    """``(pair, kind, objects, mask)`` per pair: the full image, nothing, then each subset."""
    plan = []
    for p, n in enumerate(image_index.tolist()):
        regions = [torch.as_tensor(m).bool() for m in objects[n]]
        keep = largest_objects(regions, limit)
        plan += [(p, "full", (), torch.ones(*size)), (p, "none", (), torch.zeros(*size))]
        for kind, subset in object_subsets(len(keep)):
            chosen = [keep[i] for i in subset]
            union = torch.stack([regions[i] for i in chosen]).any(0).float()
            plan.append((p, kind, tuple(chosen), union))
    return plan


def _contribution_rows(plan, scores: torch.Tensor, pairs: int):
    """The rows of :class:`ObjectContributions` and each pair's full and blurred scores."""
    full, blurred = torch.full((pairs,), math.nan), torch.full((pairs,), math.nan)
    gains: dict[tuple[int, int], float] = {}
    rows = []
    for (p, kind, chosen, _), value in zip(plan, scores.tolist(), strict=True):
        if kind == "full":
            full[p] = value
        elif kind == "none":
            blurred[p] = value
        else:
            gain = value - float(blurred[p])
            if kind == "single":
                gains[(p, chosen[0])] = gain
            parts = sum(gains[(p, i)] for i in chosen)
            rows.append(
                {
                    "pair": p,
                    "objects": list(chosen),
                    "kind": kind,
                    "score": value,
                    "normalised": value / float(full[p]) if full[p] > 0 else math.nan,
                    "gain": gain,
                    "sum_of_parts": parts,
                    "ratio": gain / parts if parts != 0 else math.nan,
                }
            )
    return rows, full, blurred


def object_coverage(
    curve: AreaCurve, objects: Sequence[Sequence[torch.Tensor]]
) -> list[list[float | None]]:
    """Per pair of ``curve``, the fraction of each of its image's objects (``objects[n]``:
    H×W bool masks) that the sufficient-area preserve mask covers, ``Σ m·o / Σ o`` with ``m``
    the mask of the smallest grid area reaching the level; None for every object of a pair
    that never reaches it (and for empty objects)."""
    if curve.sufficient_area is None:
        raise ValueError("object_coverage needs an area curve with the preserve game")
    out = []
    level = curve.preserve_fraction
    for p, n in enumerate(curve.image_index.tolist()):
        reached = (curve.curves["preserve"][p] >= level).nonzero().flatten().tolist()
        row: list[float | None] = []
        for region in objects[n]:
            region = torch.as_tensor(region).float()
            if not reached or region.sum() == 0:
                row.append(None)
                continue
            mask = curve.masks["preserve"][p, reached[0]]
            row.append(float((mask * region).sum() / region.sum()))
        out.append(row)
    return out
