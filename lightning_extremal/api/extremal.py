"""The Python API: ``extremal_perturbation(...)`` and the Captum-style ``ExtremalPerturbation``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import lightning as L
import torch

from ..callbacks.progress import progress_phase
from ..config import MethodConfig, TrainerConfig, validate_method
from ..engine.classifier import predicted_classes, probe_classes
from ..engine.distributed import process_rank, rank_block, shards_images
from ..engine.inputs import check_images, resolve_targets
from ..engine.trainer import make_trainer, quiet_lightning
from ..modules.image_masks import ExtremalPerturbationModule
from ..modules.layer_masks import ChannelPerturbationModule, LayerSpatialModule
from ..modules.mask_game import HISTORY_ROWS
from ..ops.area import lambda_schedule
from ..ops.frozen import frozen
from ..ops.layers import get_layer
from ..ops.rewards import RewardFn
from .memory import check_chunk_memory
from .options import Fit, to_configs

#: What a mask of :func:`extremal_perturbation` covers (``kind=``, as ``method.kind``): the
#: input image, the channels of ``layer`` or its spatial grid.
MASK_KINDS = ("input", "channel", "layer-spatial")


@dataclass
class ExtremalResult:
    """Masks and their statistics for P (image, target) pairs × K areas.

    ``masks`` P×K×H×W in [0, 1] at the input's resolution (with ``layer=``: P×K×C over the
    layer's channels, or P×K×H_L×W_L over its grid); ``areas`` (K,) the requested areas;
    ``achieved_areas`` (the fraction of the image, of the channels or of the layer grid each
    mask keeps) and ``rewards`` P×K after the last step; ``history`` maps ``"reward"``,
    ``"area_loss"``, ``"achieved_area"`` and ``"lambda"`` to P×K×T per-step values;
    ``image_index`` and ``targets`` (P,) say which image and class each row explains;
    ``converged`` P×K bool: the achieved area ended within ``max(0.2·a, one parameter's
    share)`` of the requested ``a`` and the reward stopped moving over the last tenth of the
    steps (:func:`~lightning_extremal.ops.convergence.converged`; a mask that did not is not
    yet the extremal perturbation of its area: run more steps);
    ``start`` where the masks started: ``"uniform"`` (``init``) or ``"grad_cam:<layer>"``
    (the warm start; pairs whose Grad-CAM map was empty started uniform).
    """

    masks: torch.Tensor
    rewards: torch.Tensor
    achieved_areas: torch.Tensor
    history: dict[str, torch.Tensor]
    image_index: torch.Tensor
    targets: torch.Tensor
    areas: torch.Tensor
    converged: torch.Tensor
    start: str = "uniform"


def _mask_kind(kind: str | None, layer: str | None) -> str:
    """``kind``, else ``"channel"`` for a layer and ``"input"`` without."""
    if kind is None:
        kind = "input" if layer is None else "channel"
    if kind not in MASK_KINDS:
        hint = " (feature_inversion / activation_diff do invert / diff)"
        raise ValueError(f"kind must be one of {list(MASK_KINDS)}{hint}; got {kind!r}")
    if (kind == "input") != (layer is None):
        raise ValueError(f"kind={kind!r} needs layer=None for input masks, a layer name otherwise")
    return kind


def extremal_perturbation(
    model: torch.nn.Module,
    images: torch.Tensor,
    targets: Any = None,
    areas: Sequence[float] | float = (0.1,),
    *,
    reward: str | RewardFn = "simple",
    layer: str | None = None,
    kind: str | None = None,
    **options: Any,
) -> ExtremalResult:
    """Extremal perturbations of ``images`` for ``targets`` at each of ``areas``.

    ``images`` N×C×H×W float (as the model takes them); ``targets`` an int, N ints, a
    tensor of N ints, N lists of ints (several targets of one image → separate masks), or
    None for each image's predicted class. ``reward`` is ``"simple"``, ``"contrastive"`` or a
    callable ``(logits, targets) -> reward``. ``options`` are the fields of
    :class:`~lightning_extremal.config.MethodConfig` (``variant``, ``max_iter``, ``step``,
    ``sigma``, ``optimizer``, ``lr``, …) and the run options ``seed``, ``accelerator``,
    ``devices``, ``num_nodes``, ``strategy``, ``collective_timeout`` (seconds a rank waits in a
    collective), ``sharded`` (True: ``images`` are this rank's own block of a multi-process job,
    and the result covers every rank's), ``precision``, ``compile`` and ``channels_last`` (True | False |
    "auto"), ``logger`` (a Lightning logger, or ``"wandb"`` | ``"csv"`` | ``"tensorboard"`` |
    ``"none"``: that logger, writing under ``default_root_dir``), ``callbacks``, ``progress``,
    ``log_every_n_steps``, ``batch_size`` (pairs per Lightning fit; None = all in one fit),
    ``ckpt_path`` and ``default_root_dir``.
    The model is left exactly as given (memory format included). Input masks start at the
    top-a region of each pair's Grad-CAM map where the model has a layer with a spatial grid
    (``warm_start="auto"``, the default; ``"none"``: the uniform ``init``; ``"grad_cam"``:
    always, ``warm_start_layer`` naming its layer).

    ``layer`` (a module name, e.g. ``"layer3"``, ``"features.28"``) explains that layer's
    activation instead of the input: ``kind="channel"`` (the default with a layer) masks its C
    channels (areas are fractions of C, or channel counts when integral ≥ 1;
    ``channel_baseline`` zero|mean), ``kind="layer-spatial"`` its H_L×W_L grid
    (``space_baseline``, ``layer_step``, ``layer_sigma``) — the values of ``method.kind``.
    Channels are features and the grid is a place on every layout: N×C×H×W (CNNs),
    N×H×W×C (Swin) and N×T×C tokens (ViT: the patch tokens' grid, the class token kept),
    read by ``layer_layout`` (``auto`` | ``nchw`` | ``nhwc`` | ``ntc``, with ``layer_grid`` and
    ``layer_extra_tokens``; auto refuses shapes that read two ways, see docs/layers.md).
    See docs/layers.md.
    """
    areas = [areas] if isinstance(areas, (int, float)) else list(areas)
    method, trainer, fit = to_configs(options, MethodConfig(areas=areas))
    method = replace(method, kind=_mask_kind(kind, layer), layer=layer)
    if isinstance(reward, str):
        method = replace(method, reward=reward)
    validate_method(method, reward_is_callable=callable(reward))
    reward_fn = None if isinstance(reward, str) else reward
    return explain(model, images, targets, method, trainer, fit, reward_fn)


def explain(
    model: torch.nn.Module,
    images: torch.Tensor,
    targets: Any,
    method: MethodConfig,
    trainer: TrainerConfig,
    fit: Fit | None = None,
    reward_fn: RewardFn | None = None,
) -> ExtremalResult:
    """:func:`extremal_perturbation` with its settings as validated configs, whole: the
    method (``method.kind``: input | channel | layer-spatial, with ``method.layer``) and the
    trainer; ``fit`` the objects of the call (logger, callbacks, batch size, …);
    ``reward_fn`` a callable reward overriding ``method.reward``. Jobs call this."""
    fit = fit or Fit()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    empty_block = fit.sharded and len(images) == 0  # a rank with no images of the chunk
    if not empty_block:
        check_images(images)
    for name in (method.layer, method.warm_start_layer):
        if name is not None:
            get_layer(model, name)  # a wrong name fails here, listing the nearest names
    if fit.batch_size is not None and fit.sharded:
        raise ValueError("batch_size must be None with sharded=True (one fit per chunk)")
    with frozen(model):
        if empty_block:
            image_index, classes = (
                torch.zeros(0, dtype=torch.long),
                torch.zeros(0, dtype=torch.long),
            )
        else:
            num_classes = probe_classes(model, images)
            if targets is None:
                targets = predicted_classes(model, images).tolist()
            image_index, classes = resolve_targets(targets, len(images), num_classes)
        L.seed_everything(trainer.seed, verbose=False)
        chunk = fit.batch_size or max(len(classes), 1)
        problem = Problem(model, images, method, trainer, fit, reward_fn)
        starts = range(0, max(len(classes), 1), chunk)
        parts = []
        for number, s in enumerate(starts, 1):
            with _batch_phase(number, len(starts)):
                parts.append(_optimise(problem, image_index[s : s + chunk], classes[s : s + chunk]))
    stats = ("masks", "rewards", "achieved_areas", "converged", "image_index", "targets")
    merged = {k: torch.cat([p[k] for p in parts]) for k in stats}
    history = {k: torch.cat([p["history"][k] for p in parts]) for k in parts[0]["history"]}
    starts = [p["start"] for p in parts if p["start"] != "uniform"]
    return ExtremalResult(
        history=history,
        areas=torch.tensor(method.areas, dtype=torch.float64),
        start=starts[0] if starts else "uniform",
        **merged,
    )


def _batch_phase(number: int, total: int):
    """Fit ``number`` of the ``total`` fits of one call, on its progress bar
    (``batch 2/3: 64 masks``); a single fit is not labelled."""
    return progress_phase(f"batch {number}/{total}") if total > 1 else nullcontext()


@dataclass
class Problem:
    """What every fit of one :func:`explain` call shares."""

    model: torch.nn.Module
    images: torch.Tensor
    method: MethodConfig
    trainer: TrainerConfig
    fit: Fit = field(default_factory=Fit)
    reward_fn: RewardFn | None = None


def _optimise(problem: Problem, image_index: torch.Tensor, targets: torch.Tensor) -> dict:
    """One Lightning fit over a chunk of pairs; returns its final masks and history, and
    the image and target of each of its pairs.

    With several processes each started as its own program (:func:`shards_images`), each
    rank keeps only its own contiguous block of the images (``sharded=True``: ``images`` are
    that block already) and builds only their pyramids; the fit shares the blocks' masks."""
    method, trainer, fit, images = problem.method, problem.trainer, problem.fit, problem.images
    block = method.kind == "input" and (fit.sharded or shards_images(trainer))
    split, used_all = None, torch.unique(image_index)
    if block and not fit.sharded:
        images, image_index, targets, split = _own_block(images, image_index, targets, trainer)
    used, local_index = torch.unique(image_index, return_inverse=True)
    masks = len(targets) * len(method.areas)
    if trainer.memory_check and method.kind == "input" and masks:
        masks = masks if block else math.ceil(masks / process_rank(trainer)[1])
        check_chunk_memory(problem.model, images[used], masks, method, trainer)
    args = (problem.model, images[used], targets, local_index, method, problem.reward_fn)
    if method.kind == "channel":
        module = ChannelPerturbationModule(*args)
    elif method.kind == "layer-spatial":
        module = LayerSpatialModule(*args)
    else:
        module = ExtremalPerturbationModule(*args)
    module.compiled = trainer.compile
    module.channels_last = trainer.channels_last
    module.block_sharded = block
    with quiet_lightning():
        lightning_trainer = make_trainer(
            trainer, method.max_iter, fit.callbacks, fit.logger, fit.default_root_dir
        )
        lightning_trainer.fit(module, ckpt_path=fit.ckpt_path)
    out = module.final()
    out["history"] = _history(module, method)
    pair_image = module.mask_image[:: module.num_areas].cpu()
    out["targets"] = module.mask_target[:: module.num_areas].cpu()
    if block:  # every rank's pairs: images numbered over all the blocks
        out["image_index"] = pair_image if fit.sharded else used_all[pair_image]
    else:
        out["image_index"] = image_index
    if split is not None:  # the blocks' pairs in image order → the caller's order
        out = {k: _unsorted(v, split) for k, v in out.items()}
    out["start"] = getattr(module, "start", "uniform")  # layer masks start uniform
    return out


def _own_block(images, image_index, targets, trainer: TrainerConfig) -> tuple:
    """This rank's contiguous block of the images used by the pairs (``images`` keep their
    indices: the others are left out of the fit, not renumbered) and its pairs, in image
    order; and the permutation that put the caller's pairs in image order."""
    rank, world = process_rank(trainer)
    order = torch.argsort(image_index, stable=True)
    used = torch.unique(image_index)
    mine = used[rank_block(len(used), rank, world)]
    own = order[torch.isin(image_index[order], mine)]
    return images, image_index[own], targets[own], order


def _unsorted(value, order: torch.Tensor):
    """``value`` of pairs in ``order`` (first dim) back in the caller's pair order."""
    if isinstance(value, dict):
        return {k: _unsorted(v, order) for k, v in value.items()}
    out = torch.empty_like(value)
    out[order] = value
    return out


def _history(module, config: MethodConfig) -> dict[str, torch.Tensor]:
    """Per-step reward, area loss, achieved area and λ of each mask, each P×K×T."""
    pairs, k = module.num_pairs, module.num_areas
    rows = module.history.detach().cpu().view(config.max_iter, len(HISTORY_ROWS), pairs, k)
    history = {
        name: rows[:, i].permute(1, 2, 0).contiguous() for i, name in enumerate(HISTORY_ROWS)
    }
    steps = torch.arange(config.max_iter)
    lam = lambda_schedule(
        config.lambda0, config.lambda_growth, config.lambda_final, config.max_iter, steps
    ).float()
    history["lambda"] = lam.expand(pairs, k, -1).contiguous()
    return history


def mask_method(method: MethodConfig) -> MethodConfig:
    """The method :func:`explain` runs for a run's ``method``: ``kind="diff"`` explained as
    the ``channel`` masks it compares."""
    return replace(method, kind="channel") if method.kind == "diff" else method


class ExtremalPerturbation:
    """Captum-style attribution: ``ExtremalPerturbation(model).attribute(images, target=…)``.

    Returns the masks (N×K×H×W for one target per image); the full
    :class:`ExtremalResult` of the last call is kept in ``last_result``.
    """

    def __init__(self, model: torch.nn.Module, **defaults: Any) -> None:
        self.model = model
        self.defaults = defaults
        self.last_result: ExtremalResult | None = None

    def attribute(
        self,
        inputs: torch.Tensor,
        target: Any = None,
        areas: Sequence[float] | float = (0.1,),
        **options: Any,
    ) -> torch.Tensor:
        self.last_result = extremal_perturbation(
            self.model, inputs, target, areas, **{**self.defaults, **options}
        )
        return self.last_result.masks
