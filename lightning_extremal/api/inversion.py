"""``feature_inversion(...)``: images whose activation at a layer matches a given one."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from ..config import InversionConfig, TrainerConfig, validate_inversion
from ..engine.classifier import expected_channels
from ..engine.trainer import make_trainer, quiet_lightning
from ..modules.inversion import FeatureInversionModule
from ..ops.frozen import frozen
from ..ops.inversion import initial_images
from ..ops.layers import get_layer, layer_activation
from .options import Fit, to_configs

#: The run options :func:`feature_inversion` takes besides ``seed`` and ``callbacks``.
INVERSION_RUN_OPTIONS = (
    "accelerator",
    "devices",
    "strategy",
    "precision",
    "logger",
    "progress",
    "log_every_n_steps",
    "default_root_dir",
)


def _image_shape(model: nn.Module, count: int, size: Any, channels: int | None) -> tuple:
    if size is None:
        raise ValueError("feature_inversion needs size=(H, W) (or an int) or init=images")
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    channels = channels or expected_channels(model) or 3
    return (count, channels, int(height), int(width))


def feature_inversion(
    model: nn.Module,
    layer: str,
    activations: torch.Tensor,
    *,
    size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    init: torch.Tensor | None = None,
    max_iter: int = 200,
    lr: float = 0.05,
    tv_weight: float = 1.0,
    tv_beta: float = 2.0,
    norm_weight: float = 0.05,
    norm_alpha: float = 6.0,
    jitter: int = 0,
    pixel_range: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
    callbacks: list | None = None,
    **run: Any,
) -> torch.Tensor:
    """Images whose activation at ``layer`` matches ``activations`` (Mahendran & Vedaldi 2015).

    ``activations`` N×… as :func:`~.layers.layer_activation` returns them for images of
    ``size`` (H, W) with ``channels`` channels (default: the model's first convolution's
    input, else 3); ``init`` (N×C×H×W) replaces the default start, the middle of
    ``pixel_range`` plus a little seeded noise. Minimises
    ``‖Φ_L(x) − Φ₀‖²/‖Φ₀‖² + tv_weight·TV^β(x) + norm_weight·N_α(x)`` with Adam (``lr``) for
    ``max_iter`` steps, clamping pixels to ``pixel_range``; ``jitter`` > 0 translates the image
    randomly by up to that many px each step. ``callbacks`` are Lightning callbacks (the
    module's ``image`` and ``history`` show the reconstruction evolve); ``run`` takes the run
    options of :func:`~lightning_extremal.api.extremal.extremal_perturbation` (``accelerator``, ``devices``,
    ``precision``, ``logger``, ``progress``, …). The model is left exactly as given.
    Returns N×C×H×W images.
    """
    if not isinstance(activations, torch.Tensor) or activations.dim() < 2:
        raise ValueError("activations must be a tensor N×… with one row per image")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer; got {max_iter!r}")
    unknown = sorted(set(run) - set(INVERSION_RUN_OPTIONS))
    if unknown:
        valid = list(INVERSION_RUN_OPTIONS)
        raise TypeError(f"unknown option(s) {unknown}; valid run options: {valid}")
    settings = dict(
        invert_iter=max_iter,
        invert_lr=lr,
        tv_weight=tv_weight,
        tv_beta=tv_beta,
        norm_weight=norm_weight,
        norm_alpha=norm_alpha,
        invert_jitter=jitter,
    )
    run = {**run, "seed": seed, "callbacks": callbacks}
    config, trainer, fit = to_configs(run, InversionConfig(**settings))
    validate_inversion(config)
    get_layer(model, layer)
    if init is None:
        init = initial_images(
            _image_shape(model, len(activations), size, channels), pixel_range, seed
        )
    elif init.shape[0] != len(activations):
        raise ValueError(f"init has {init.shape[0]} images for {len(activations)} activations")
    return invert(model, layer, activations, init, config, trainer, fit, pixel_range)


def invert(
    model: nn.Module,
    layer: str,
    activations: torch.Tensor,
    init: torch.Tensor,
    config: InversionConfig,
    trainer: TrainerConfig,
    fit: Fit | None = None,
    pixel_range: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    """:func:`feature_inversion` with its settings as validated configs, whole, from the
    starting images ``init``: N×C×H×W images whose activation at ``layer`` matches
    ``activations``. Jobs call this."""
    fit = fit or Fit()
    with frozen(model):
        device = next(iter(model.parameters()), init).device
        probe = layer_activation(model, layer, init[:1].to(device))
        if probe.shape[1:] != activations.shape[1:]:
            raise ValueError(
                f"activations have shape {tuple(activations.shape[1:])} per image but layer "
                f"{layer!r} gives {tuple(probe.shape[1:])} for images of shape "
                f"{tuple(init.shape[1:])}"
            )
        L.seed_everything(trainer.seed, verbose=False)
        module = FeatureInversionModule(model, layer, activations, init, config, pixel_range)
        with quiet_lightning():
            lightning_trainer = make_trainer(
                trainer, config.invert_iter, fit.callbacks, fit.logger, fit.default_root_dir
            )
            lightning_trainer.fit(module)
    return module.image.detach().cpu()
