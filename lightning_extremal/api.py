"""The Python API: ``extremal_perturbation(...)`` and the Captum-style ``ExtremalPerturbation``."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from .config import PRECISIONS, MethodConfig, validate_method, validate_run_options
from .freeze import frozen
from .layer_module import ChannelPerturbationModule, LayerSpatialModule
from .layers import get_layer
from .module import HISTORY_ROWS, ExtremalPerturbationModule
from .rewards import RewardFn

#: Options that configure the run rather than the method (with their defaults).
RUN_OPTIONS: dict[str, Any] = {
    "seed": 0,
    "accelerator": "auto",
    "devices": 1,
    "strategy": "auto",
    "precision": "32-true",
    "logger": False,
    "callbacks": None,
    "progress": True,
    "compile": "auto",
    "channels_last": "auto",
    "log_every_n_steps": 10,
    "batch_size": None,
    "ckpt_path": None,
    "default_root_dir": None,
}
#: ``over=`` of a layer attribution → ``MethodConfig.kind``.
OVER_KINDS = {"channels": "channel", "space": "layer-spatial"}
#: MethodConfig fields that ``layer=``/``over=`` set, not options.
_LAYER_FIELDS = ("kind", "layer")


@dataclass
class ExtremalResult:
    """Masks and their statistics for P (image, target) pairs × K areas.

    ``masks`` P×K×H×W in [0, 1] at the input's resolution (with ``layer=``: P×K×C over the
    layer's channels, or P×K×H_L×W_L over its grid); ``rewards`` and ``areas`` (the
    achieved fraction of the image, of the channels or of the layer grid) P×K after the
    last step; ``history`` maps ``"reward"``,
    ``"area_loss"``, ``"area"`` and ``"lambda"`` to P×K×T per-step values; ``image_index``
    and ``targets`` (P,) say which image and class each row explains; ``target_areas`` (K,).
    """

    masks: torch.Tensor
    rewards: torch.Tensor
    areas: torch.Tensor
    history: dict[str, torch.Tensor]
    image_index: torch.Tensor
    targets: torch.Tensor
    target_areas: torch.Tensor


def _check_images(images: Any) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor N×C×H×W; got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(f"images must have 4 dims N×C×H×W; got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"images must be a float tensor; got dtype {images.dtype}")
    if images.shape[0] == 0:
        raise ValueError("images is empty (N = 0)")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or infinite values")


def _expected_channels(model: torch.nn.Module) -> int | None:
    for module in model.modules():
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            return module.in_channels
    return None


def _probe(model: torch.nn.Module, images: torch.Tensor) -> int:
    """Number of classes the model outputs, checked on one image before any long work."""
    channels = _expected_channels(model)
    if channels is not None and images.shape[1] != channels:
        raise ValueError(
            f"images have {images.shape[1]} channels but the model's first convolution "
            f"expects {channels}"
        )
    device = next(iter(model.parameters()), images).device
    try:
        with torch.no_grad():
            out = model(images[:1].to(device))
    except RuntimeError as error:
        raise ValueError(
            f"the model cannot run on images of shape {tuple(images.shape[1:])}: {error}"
        ) from error
    if not isinstance(out, torch.Tensor) or out.dim() < 2:
        raise ValueError("the model must return class scores of shape N×classes(×…)")
    return out.shape[1]


def predicted_classes(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Top-1 class of each image, (N,)."""
    with frozen(model), torch.no_grad():
        device = next(iter(model.parameters()), images).device
        logits = model(images.to(device))
    return logits.reshape(*logits.shape[:2], -1).mean(-1).argmax(1).cpu()


def resolve_targets(
    targets: Any, num_images: int, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(image_index, targets) pairs from an int, N ints, or N lists of ints (multi-label)."""
    if isinstance(targets, torch.Tensor):
        if targets.dim() > 1 or targets.is_floating_point():
            raise ValueError(
                f"targets tensor must be 1-D integer; got {targets.dtype} {tuple(targets.shape)}"
            )
        targets = targets.tolist()
    if isinstance(targets, bool) or targets is None:
        raise TypeError(
            f"targets must be an int, a sequence of N ints or of lists; got {targets!r}"
        )
    if isinstance(targets, int):
        targets = [targets] * num_images
    if not isinstance(targets, Sequence) or isinstance(targets, str):
        raise TypeError(
            f"targets must be an int, a sequence or a tensor; got {type(targets).__name__}"
        )
    if len(targets) != num_images:
        raise ValueError(f"got {len(targets)} targets for {num_images} images")
    index, classes = [], []
    for i, entry in enumerate(targets):
        entries = entry if isinstance(entry, Sequence) and not isinstance(entry, str) else [entry]
        if len(entries) == 0:
            raise ValueError(f"image {i} has an empty list of targets")
        for t in entries:
            t = t.item() if isinstance(t, torch.Tensor) else t
            if isinstance(t, bool) or not isinstance(t, int):
                raise TypeError(f"target {t!r} of image {i} is not an int")
            if not 0 <= t < num_classes:
                raise ValueError(f"target {t} of image {i} is out of range [0, {num_classes})")
            index.append(i)
            classes.append(t)
    return torch.tensor(index), torch.tensor(classes)


def _split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    method_keys = {f.name for f in fields(MethodConfig)} - set(_LAYER_FIELDS)
    unknown = sorted(set(options) - method_keys - set(RUN_OPTIONS))
    if unknown:
        raise TypeError(
            f"unknown option(s) {unknown}; valid options: {sorted(method_keys | set(RUN_OPTIONS))}"
        )
    method = {k: v for k, v in options.items() if k in method_keys}
    run = {**RUN_OPTIONS, **{k: v for k, v in options.items() if k in RUN_OPTIONS}}
    validate_run_options(run["precision"], run["compile"], run["channels_last"])
    return method, run


@contextlib.contextmanager
def _quiet_lightning() -> Any:
    """Silence Lightning's per-fit banners (GPU available…, dataloader workers…)."""
    names = ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        # The classifier is in eval mode on purpose (frozen batch-norm statistics).
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


def make_trainer(max_iter: int, run: dict[str, Any], callbacks: list[Callback]) -> L.Trainer:
    """A fresh Trainer for one optimisation (a finished Trainer ignores a second ``fit``)."""
    from lightning_extremal.callbacks import StepProgressBar

    if str(run["precision"]) not in PRECISIONS:
        # "bf16-true"/"16-true" would convert the caller's model weights in place.
        raise ValueError(f"precision must be one of {list(PRECISIONS)}; got {run['precision']!r}")
    callbacks = list(callbacks)
    strategy = run["strategy"]
    if strategy in ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook"):
        from lightning.pytorch.strategies import DDPStrategy

        # Buffers (the pyramid) are computed identically on every rank: never broadcast them.
        start = {"ddp": "popen", "ddp_spawn": "spawn", "ddp_fork": "fork", "ddp_notebook": "fork"}
        strategy = DDPStrategy(start_method=start[strategy], broadcast_buffers=False)
    if run["progress"]:
        callbacks.append(StepProgressBar())
    return L.Trainer(
        max_epochs=max_iter,
        accelerator=run["accelerator"],
        devices=run["devices"],
        strategy=strategy,
        precision=run["precision"],
        logger=run["logger"],
        callbacks=callbacks,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        enable_progress_bar=bool(run["progress"]),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=run["log_every_n_steps"],
        default_root_dir=run["default_root_dir"],
    )


def extremal_perturbation(
    model: torch.nn.Module,
    images: torch.Tensor,
    targets: Any = None,
    areas: Sequence[float] | float = (0.1,),
    *,
    reward: str | RewardFn = "simple",
    layer: str | None = None,
    over: str = "channels",
    **options: Any,
) -> ExtremalResult:
    """Extremal perturbations of ``images`` for ``targets`` at each of ``areas``.

    ``images`` N×C×H×W float (as the model takes them); ``targets`` an int, N ints, a
    tensor of N ints, N lists of ints (several targets of one image → separate masks), or
    None for each image's predicted class. ``reward`` is ``"simple"``, ``"contrastive"`` or a
    callable ``(logits, targets) -> reward``. ``options`` are the fields of
    :class:`~lightning_extremal.config.MethodConfig` (``variant``, ``max_iter``, ``step``,
    ``sigma``, ``optimizer``, ``lr``, …) and the run options ``seed``, ``accelerator``,
    ``devices``, ``strategy``, ``precision``, ``compile`` and ``channels_last`` (True | False |
    "auto"), ``logger``, ``callbacks``, ``progress``, ``log_every_n_steps``, ``batch_size``
    (pairs per Lightning fit; None = all in one fit), ``ckpt_path`` and ``default_root_dir``.
    The model is left exactly as given (memory format included).

    ``layer`` (a module name, e.g. ``"layer3"``, ``"features.28"``) explains that layer's
    activation instead of the input: ``over="channels"`` masks its C channels (areas are
    fractions of C, or channel counts when integral ≥ 1; ``channel_baseline`` zero|mean),
    ``over="space"`` its H_L×W_L grid (``space_baseline``, ``layer_step``, ``layer_sigma``).
    See README, "Intermediate layers".
    """
    method_options, run = _split_options(options)
    areas = [areas] if isinstance(areas, (int, float)) else list(areas)
    config = replace(MethodConfig(), areas=areas, **method_options)
    if layer is not None:
        if over not in OVER_KINDS:
            raise ValueError(f"over must be one of {list(OVER_KINDS)}; got {over!r}")
        config = replace(config, kind=OVER_KINDS[over], layer=layer)
    if isinstance(reward, str):
        config = replace(config, reward=reward)
    validate_method(config, reward_is_callable=callable(reward))
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    _check_images(images)
    if layer is not None:
        get_layer(model, layer)  # a wrong name fails here, listing the nearest names
    batch_size = run["batch_size"]
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None; got {batch_size!r}")
    with frozen(model):
        num_classes = _probe(model, images)
        if targets is None:
            targets = predicted_classes(model, images).tolist()
        image_index, classes = resolve_targets(targets, len(images), num_classes)
        L.seed_everything(run["seed"], verbose=False)
        chunk = batch_size or len(classes)
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
            for s in range(0, len(classes), chunk)
        ]
    merged = {k: torch.cat([p[k] for p in parts]) for k in ("masks", "rewards", "areas")}
    history = {k: torch.cat([p["history"][k] for p in parts]) for k in parts[0]["history"]}
    return ExtremalResult(
        history=history,
        image_index=image_index,
        targets=classes,
        target_areas=torch.tensor(areas, dtype=torch.float64),
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
    """One Lightning fit over a chunk of pairs; returns its final masks and history."""
    used, local_index = torch.unique(image_index, return_inverse=True)
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
    with _quiet_lightning():
        trainer = make_trainer(config.max_iter, run, run["callbacks"] or [])
        trainer.fit(module, ckpt_path=run["ckpt_path"])
    out = module.final()
    pairs, k = module.num_pairs, module.num_areas
    rows = module.history.detach().cpu().view(config.max_iter, len(HISTORY_ROWS), pairs, k)
    history = {
        name: rows[:, i].permute(1, 2, 0).contiguous() for i, name in enumerate(HISTORY_ROWS)
    }
    steps = torch.arange(config.max_iter, dtype=torch.float64)
    lam = (config.lambda0 * config.lambda_growth**steps).float()
    history["lambda"] = lam.expand(pairs, k, -1).contiguous()
    out["history"] = history
    return out


def method_options(method: MethodConfig) -> dict[str, Any]:
    """Keyword arguments of :func:`extremal_perturbation` for a MethodConfig (not ``areas``):
    its options, plus ``layer``/``over`` for the channel and layer-spatial kinds."""
    options = {k: v for k, v in asdict(method).items() if k not in ("areas", *_LAYER_FIELDS)}
    if method.kind in ("channel", "diff"):
        options.update(layer=method.layer, over="channels")
    elif method.kind == "layer-spatial":
        options.update(layer=method.layer, over="space")
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
