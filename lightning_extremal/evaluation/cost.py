"""What a long job will cost, said before it starts: measured costs (a calibration on the
actual model and image) times the planned amount of work, and the line that says it.

An extremal-perturbation job costs, per mask, ``max_iter`` optimisation steps (the smooth mask,
the classifier's forward and backward pass) plus, with the Grad-CAM warm start, the warm
start's fit (:data:`~..modules.image_masks.WARM_FIT_STEPS` steps of the smooth mask alone).
:func:`calibrate_masks` times both kinds of step on one pair's masks; :func:`mask_seconds` turns
them into seconds for M masks × S steps (pure, so a test checks it with known numbers)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from ..api.options import to_configs
from ..config import MeaningfulConfig, MethodConfig
from ..modules.image_masks import WARM_FIT_STEPS, ExtremalPerturbationModule
from ..naming import duration_words
from ..ops.frozen import frozen
from ..ops.layers import default_layer
from . import baselines

#: Timed repeats of each calibrated step (after one untimed warm-up call).
CALIBRATION_REPEATS = 2


@dataclass(frozen=True)
class MaskCost:
    """Measured seconds per mask and step: ``step_s`` of the optimisation (masks, classifier
    forward and backward), ``warm_s`` of the warm start's fit (masks only); ``warm_steps``: the
    warm start's steps per mask (0: the masks start uniform)."""

    step_s: float
    warm_s: float
    warm_steps: int


def mask_seconds(cost: MaskCost, masks: int, steps: int, warm_fits: int = 1) -> float:
    """Seconds of ``masks`` masks × ``steps`` optimisation steps, plus ``warm_fits`` warm-start
    fits of those masks (an analysis that shares one warm start between games fits it once)."""
    return masks * (steps * cost.step_s + warm_fits * cost.warm_steps * cost.warm_s)


def duration(seconds: float) -> str:
    """An estimate's duration: ``<1 s``, else ``~`` and :func:`~..naming.duration_words`
    (``~12 s``, ``~16 min``, ``~1.5 h``)."""
    return "<1 s" if seconds < 0.5 else f"~{duration_words(seconds)}"


def estimate_line(seconds: float, work: str, shorten: str) -> str:
    """The line printed before the work: ``~N min on this machine (WORK); SHORTEN to shorten``."""
    return f"estimate: {duration(seconds)} on this machine ({work}); {shorten} to shorten"


def _sync() -> None:
    """Wait for queued GPU work (CUDA runs asynchronously: a timer would stop too early)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def _timed(fn: Callable[[], object], repeats: int = CALIBRATION_REPEATS) -> float:
    """Mean seconds of ``fn`` over ``repeats`` calls, after one untimed call (lazy setup)."""
    fn()
    _sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync()
    return (time.perf_counter() - start) / repeats


def warm_starts(model: torch.nn.Module, images: torch.Tensor, method: MethodConfig) -> bool:
    """Whether input masks of ``method`` start at Grad-CAM (``auto``: where the model has a
    layer with a spatial grid, as the module decides)."""
    if method.warm_start == "none":
        return False
    if method.warm_start == "grad_cam":
        return True
    try:
        with frozen(model):
            default_layer(model, images[:1])
    except ValueError:
        return False
    return True


def calibrate_masks(
    model: torch.nn.Module, image: torch.Tensor, target: int, method: MethodConfig
) -> MaskCost:
    """Time the steps of one pair's masks (``image`` C×H×W, all of ``method.areas``) on the
    model's device: one optimisation step (smooth masks, the variant's perturbed images, the
    classifier's forward and backward) and one warm-start fit step (smooth masks, squared
    error, backward); each per mask. Runs uncompiled: a compiled run is faster per step."""
    device = next(iter(model.parameters()), image).device
    images = image[None].float().to(device)
    with frozen(model):
        module = ExtremalPerturbationModule(
            model,
            images,
            torch.tensor([int(target)]),
            torch.zeros(1, dtype=torch.long),
            replace(method, max_iter=1),
        ).to(device)
        module.compiled = False
        count = len(method.areas)

        def optimisation_step() -> None:
            module.mask_params.grad = None
            module.game_reward(module.masks()).sum().backward()

        def warm_step() -> None:
            module.mask_params.grad = None
            ((module.masks() - 0.5) ** 2).mean().backward()

        with torch.enable_grad():
            step_s = _timed(optimisation_step) / count
            warm = warm_starts(model, images, method)
            warm_s = _timed(warm_step) / count if warm else 0.0
    return MaskCost(step_s, warm_s, WARM_FIT_STEPS if warm else 0)


def timed_call(fn: Callable[[], object]) -> float:
    """Seconds of one call of ``fn`` (a baseline on one pair, after one untimed call)."""
    return _timed(fn, repeats=1)


#: Masks RISE is timed with (one of its batches), then scaled to its ``num_masks``.
RISE_CALIBRATION_MASKS = 100
#: Steps meaningful perturbations are timed with, then scaled to their ``max_iter``.
MP_CALIBRATION_STEPS = 2


@dataclass(frozen=True)
class MethodEstimate:
    """A benchmark method's estimated seconds and the work they count (e.g. ``16 masks × 10
    steps``)."""

    method: str
    seconds: float
    work: str


def method_estimate(
    method: str,
    model: torch.nn.Module,
    image: torch.Tensor,
    target: int,
    options: dict,
    pairs: int,
    images: int,
) -> MethodEstimate:
    """Seconds of a benchmark ``method`` (with its ``options``) on ``pairs`` (image, class)
    pairs of ``images`` images, from a calibration on ``image`` and ``target``: extremal
    perturbations by their masks' steps (:func:`calibrate_masks`), RISE by one batch of its
    masks, meaningful perturbations by two steps, the other methods by one call."""
    one = image[None]
    if method in ("extremal_perturbation", "extremal_perturbation_uniform"):
        rest = {k: v for k, v in options.items() if k != "areas"}
        config, _, _ = to_configs(rest, MethodConfig(areas=list(options["areas"])))
        cost = calibrate_masks(model, image, target, config)
        masks = pairs * len(config.areas)
        seconds = mask_seconds(cost, masks, config.max_iter)
        return MethodEstimate(method, seconds, f"{masks} masks × {config.max_iter} steps")
    if method == "rise":
        total = int(options.get("num_masks", baselines.RISE_NUM_MASKS))
        batch = min(RISE_CALIBRATION_MASKS, total)
        calibration = {**options, "num_masks": batch}
        seconds = timed_call(lambda: baselines.rise_saliency(model, one, [target], **calibration))
        return MethodEstimate(
            method, seconds * total / batch * images, f"{total} masks × {images} images"
        )
    if method == "meaningful_perturbation":
        steps = int(options.get("max_iter", MeaningfulConfig().max_iter))
        calibration = {**options, "max_iter": MP_CALIBRATION_STEPS}
        seconds = timed_call(
            lambda: baselines.meaningful_perturbation_saliency(model, one, [target], **calibration)
        )
        per_step = seconds / MP_CALIBRATION_STEPS
        return MethodEstimate(method, per_step * steps * pairs, f"{pairs} pairs × {steps} steps")
    seconds = timed_call(lambda: baselines.saliency(method, model, one, [target], **options))
    return MethodEstimate(method, seconds * pairs, f"{pairs} pairs")


def benchmark_line(estimates: list[MethodEstimate], extra: str = "") -> str:
    """The benchmark's estimate line: the total, then each method's share, slowest first."""
    total = sum(e.seconds for e in estimates)
    ordered = sorted(estimates, key=lambda e: -e.seconds)
    parts = ", ".join(f"{e.method} {duration(e.seconds)} ({e.work})" for e in ordered)
    shorten = "`limit=…` / `max_iter=…` / `rise_masks=…` / fewer `methods=`"
    return estimate_line(total, parts + extra, shorten)
