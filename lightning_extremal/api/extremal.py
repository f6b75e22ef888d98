"""The Python API: ``extremal_perturbation(...)`` and the Captum-style ``ExtremalPerturbation``."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import lightning as L
import torch

from ..config import MethodConfig, validate_method, validate_run_options
from ..engine.classifier import predicted_classes, probe_classes
from ..engine.distributed import process_rank, rank_block, shards_images
from ..engine.inputs import check_images, resolve_targets
from ..engine.loggers import check_logger
from ..engine.trainer import RUN_OPTIONS, make_trainer, quiet_lightning
from ..modules.image_masks import ExtremalPerturbationModule
from ..modules.layer_masks import ChannelPerturbationModule, LayerSpatialModule
from ..modules.mask_game import HISTORY_ROWS
from ..ops.area import lambda_schedule
from ..ops.frozen import frozen
from ..ops.layers import get_layer
from ..ops.rewards import RewardFn
from .memory import check_chunk_memory

#: What a mask of :func:`extremal_perturbation` covers (``kind=``, as ``method.kind``): the
#: input image, the channels of ``layer`` or its spatial grid.
MASK_KINDS = ("input", "channel", "layer-spatial")
#: The older spelling ``over=`` of a layer's mask kind (still accepted, with a warning).
OVER_KINDS = {"channels": "channel", "space": "layer-spatial"}


@dataclass
class ExtremalResult:
    """Masks and their statistics for P (image, target) pairs × K areas.

    ``masks`` P×K×H×W in [0, 1] at the input's resolution (with ``layer=``: P×K×C over the
    layer's channels, or P×K×H_L×W_L over its grid); ``areas`` (K,) the requested areas;
    ``achieved_areas`` (the fraction of the image, of the channels or of the layer grid each
    mask keeps) and ``rewards`` P×K after the last step; ``history`` maps ``"reward"``,
    ``"area_loss"``, ``"achieved_area"`` and ``"lambda"`` to P×K×T per-step values;
    ``image_index`` and ``targets`` (P,) say which image and class each row explains;
    ``converged`` P×K bool: the achieved area ended within 0.05 of the requested one (a mask
    that did not is not yet the extremal perturbation of its area: run more steps);
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


def _split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    method_keys = {f.name for f in fields(MethodConfig)}
    unknown = sorted(set(options) - method_keys - set(RUN_OPTIONS))
    if unknown:
        raise TypeError(
            f"unknown option(s) {unknown}; valid options: {sorted(method_keys | set(RUN_OPTIONS))}"
        )
    method = {k: v for k, v in options.items() if k in method_keys}
    run = {**RUN_OPTIONS, **{k: v for k, v in options.items() if k in RUN_OPTIONS}}
    validate_run_options(run["precision"], run["compile"], run["channels_last"])
    check_logger(run["logger"])
    return method, run


def _mask_kind(kind: str | None, layer: str | None, over: str | None) -> str:
    """``kind``, else ``"channel"`` for a layer and ``"input"`` without; ``over`` (older
    spelling) maps ``channels``/``space`` to ``channel``/``layer-spatial``."""
    if over is not None:
        if over not in OVER_KINDS:
            raise ValueError(f"over must be one of {list(OVER_KINDS)}; got {over!r}")
        warnings.warn(
            f"over={over!r} is now kind={OVER_KINDS[over]!r} (one name for the kind of mask "
            "in the API, the config and the files)",
            DeprecationWarning,
            stacklevel=3,
        )
        kind = OVER_KINDS[over]
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
    over: str | None = None,
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
    ``over="channels"|"space"`` is the older spelling of ``kind``.
    See docs/layers.md.
    """
    method_options, run = _split_options(options)
    areas = [areas] if isinstance(areas, (int, float)) else list(areas)
    kind = _mask_kind(kind, layer, over)
    config = replace(MethodConfig(), areas=areas, **method_options, kind=kind, layer=layer)
    if isinstance(reward, str):
        config = replace(config, reward=reward)
    validate_method(config, reward_is_callable=callable(reward))
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    empty_block = run["sharded"] and len(images) == 0  # a rank with no images of the chunk
    if not empty_block:
        check_images(images)
    for name in (layer, config.warm_start_layer):
        if name is not None:
            get_layer(model, name)  # a wrong name fails here, listing the nearest names
    batch_size = run["batch_size"]
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None; got {batch_size!r}")
    if batch_size is not None and run["sharded"]:
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
        L.seed_everything(run["seed"], verbose=False)
        chunk = batch_size or max(len(classes), 1)
        parts = [
            _optimise(
                model,
                images,
                image_index[s : s + chunk],
                classes[s : s + chunk],
                config,
                reward,
                run,
            )
            for s in range(0, max(len(classes), 1), chunk)
        ]
    stats = ("masks", "rewards", "achieved_areas", "converged", "image_index", "targets")
    merged = {k: torch.cat([p[k] for p in parts]) for k in stats}
    history = {k: torch.cat([p["history"][k] for p in parts]) for k in parts[0]["history"]}
    starts = [p["start"] for p in parts if p["start"] != "uniform"]
    return ExtremalResult(
        history=history,
        areas=torch.tensor(areas, dtype=torch.float64),
        start=starts[0] if starts else "uniform",
        **merged,
    )


def _optimise(
    model: torch.nn.Module,
    images: torch.Tensor,
    image_index: torch.Tensor,
    targets: torch.Tensor,
    config: MethodConfig,
    reward: str | RewardFn,
    run: dict[str, Any],
) -> dict[str, Any]:
    """One Lightning fit over a chunk of pairs; returns its final masks and history, and
    the image and target of each of its pairs.

    With several processes each started as its own program (:func:`shards_images`), each
    rank keeps only its own contiguous block of the images (``sharded=True``: ``images`` are
    that block already) and builds only their pyramids; the fit shares the blocks' masks."""
    block = config.kind == "input" and (run["sharded"] or shards_images(run))
    split, used_all = None, torch.unique(image_index)
    if block and not run["sharded"]:
        images, image_index, targets, split = _own_block(images, image_index, targets, run)
    used, local_index = torch.unique(image_index, return_inverse=True)
    masks = len(targets) * len(config.areas)
    if run["memory_check"] and config.kind == "input" and masks:
        masks = masks if block else math.ceil(masks / process_rank(run)[1])
        check_chunk_memory(model, images[used], masks, config, run)
    reward_fn = None if isinstance(reward, str) else reward
    args = (model, images[used], targets, local_index, config.areas, config, reward_fn)
    if config.kind == "channel":
        module = ChannelPerturbationModule(*args, layer=config.layer)
    elif config.kind == "layer-spatial":
        module = LayerSpatialModule(*args, layer=config.layer)
    else:
        module = ExtremalPerturbationModule(*args)
    module.compiled = run["compile"]
    module.channels_last = run["channels_last"]
    module.block_sharded = block
    with quiet_lightning():
        trainer = make_trainer(config.max_iter, run, run["callbacks"] or [])
        trainer.fit(module, ckpt_path=run["ckpt_path"])
    out = module.final()
    out["history"] = _history(module, config)
    pair_image = module.mask_image[:: module.num_areas].cpu()
    out["targets"] = module.mask_target[:: module.num_areas].cpu()
    if block:  # every rank's pairs: images numbered over all the blocks
        out["image_index"] = pair_image if run["sharded"] else used_all[pair_image]
    else:
        out["image_index"] = image_index
    if split is not None:  # the blocks' pairs in image order → the caller's order
        out = {k: _unsorted(v, split) for k, v in out.items()}
    out["start"] = getattr(module, "start", "uniform")  # layer masks start uniform
    return out


def _own_block(images, image_index, targets, run) -> tuple:
    """This rank's contiguous block of the images used by the pairs (``images`` keep their
    indices: the others are left out of the fit, not renumbered) and its pairs, in image
    order; and the permutation that put the caller's pairs in image order."""
    rank, world = process_rank(run)
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


def method_options(method: MethodConfig) -> dict[str, Any]:
    """Keyword arguments of :func:`extremal_perturbation` for a MethodConfig (not ``areas``):
    its fields, with ``kind="diff"`` explained as the ``channel`` masks it compares."""
    options = {k: v for k, v in asdict(method).items() if k != "areas"}
    if method.kind == "diff":
        options["kind"] = "channel"
    return options


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
