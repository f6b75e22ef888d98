"""Feature inversion (Mahendran & Vedaldi, CVPR 2015): an image whose activation at a layer
matches a given one, regularised by total-variation and α-norm priors, fitted by Lightning."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import nn

from .freeze import FrozenClassifierModule, frozen
from .layers import get_layer, layer_activation, layer_output

#: Rows of :attr:`FeatureInversionModule.history`: the three terms of the objective per image.
INVERSION_ROWS = ("match", "tv", "norm")
#: Standard deviation of the noise around the middle of the pixel range that images start from.
INIT_NOISE = 0.05
#: Run options of :func:`feature_inversion` (defaults: :data:`~.api.RUN_OPTIONS`).
TRAINER_OPTIONS = (
    "accelerator",
    "devices",
    "strategy",
    "precision",
    "logger",
    "progress",
    "log_every_n_steps",
    "default_root_dir",
)
#: Added inside the TV^β root so its gradient is finite where the image is flat (β < 2).
TV_EPS = 1e-8


def activation_match(activation: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``‖Φ(x) − Φ₀‖² / ‖Φ₀‖²`` per image: N×… , N×… → (N,) (1 for a zero-activation guess)."""
    diff = (activation - target).flatten(1).pow(2).sum(1)
    return diff / target.flatten(1).pow(2).sum(1).clamp(min=1e-12)


def total_variation(images: torch.Tensor, beta: float = 2.0, scale: float = 1.0) -> torch.Tensor:
    """``TV^β(x) = mean_{c,u} ((x_{c,u+ŷ} − x_{cu})² + (x_{c,u+x̂} − x_{cu})²)^{β/2}`` of
    ``x / scale``, per image: N×C×H×W → (N,)."""
    x = images / scale
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    return (dy.pow(2) + dx.pow(2) + TV_EPS).pow(beta / 2).flatten(1).mean(1)


def alpha_norm(
    images: torch.Tensor, alpha: float = 6.0, center: float = 0.5, scale: float = 0.5
) -> torch.Tensor:
    """``N_α(x) = mean_{c,u} |(x_{cu} − center) / scale|^α`` per image: N×C×H×W → (N,).

    With ``center``/``scale`` the middle/half-width of the pixel range, the prior is ≤ 1 inside
    the range and grows steeply (α = 6) outside it.
    """
    return ((images - center) / scale).abs().pow(alpha).flatten(1).mean(1)


def random_translation(images: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Roll the whole batch by one random ``(dy, dx) ∈ [−max_shift, max_shift]²`` (the jitter of
    Mahendran & Vedaldi 2016; torch's global RNG, so seeded runs repeat)."""
    if max_shift <= 0:
        return images
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2,)).tolist()
    return images.roll((dy, dx), dims=(-2, -1))


def initial_images(
    shape: Sequence[int], pixel_range: tuple[float, float] = (0.0, 1.0), seed: int = 0
) -> torch.Tensor:
    """The starting point: the middle of the pixel range plus N(0, ``INIT_NOISE``·range) noise."""
    low, high = pixel_range
    noise = torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed))
    return ((low + high) / 2 + INIT_NOISE * (high - low) * noise).clamp(low, high)


class FeatureInversionModule(FrozenClassifierModule):
    """``x* = argmin_x ‖Φ_L(x) − Φ₀‖²/‖Φ₀‖² + λ_TV·TV^β(x) + λ_α·N_α(x)`` by Adam on the pixels.

    The images are the only trainable parameters (``image``, N×C×H×W); the classifier is
    kept frozen and in eval mode and runs only up to the layer. Pixels are clamped to
    ``pixel_range`` after each step. ``history`` (T×3×N) holds the match, TV and norm terms
    at each step, so callbacks and tests can follow the reconstruction. One epoch is one step.

    Args:
        classifier: the model; ``layer`` a module name in it.
        targets: Φ₀, N×… activations to match. init: N×C×H×W starting images.
        max_iter, lr: Adam steps and learning rate. tv_weight, tv_beta, norm_weight,
        norm_alpha: the priors. jitter: random translation of ±n px per step (0: off).
        pixel_range: (low, high) of valid pixels; the priors are measured relative to it.
    """

    def __init__(
        self,
        classifier: nn.Module,
        layer: str,
        targets: torch.Tensor,
        init: torch.Tensor,
        max_iter: int = 200,
        lr: float = 0.05,
        tv_weight: float = 1.0,
        tv_beta: float = 2.0,
        norm_weight: float = 0.05,
        norm_alpha: float = 6.0,
        jitter: int = 0,
        pixel_range: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        super().__init__()
        self.classifier = classifier
        self.layer = layer
        self.image = nn.Parameter(init.detach().clone().float())
        self.register_buffer("targets", targets.detach().float(), persistent=False)
        self.register_buffer("history", torch.zeros(max_iter, len(INVERSION_ROWS), len(init)))
        self.max_iter, self.lr, self.jitter = max_iter, lr, jitter
        self.tv_weight, self.tv_beta = tv_weight, tv_beta
        self.norm_weight, self.norm_alpha = norm_weight, norm_alpha
        self.pixel_range = (float(pixel_range[0]), float(pixel_range[1]))

    def terms(self, images: torch.Tensor) -> torch.Tensor:
        """The objective's three terms per image, 3×N: match, TV^β, α-norm."""
        low, high = self.pixel_range
        center, half = (low + high) / 2, (high - low) / 2
        activation = layer_output(self.classifier, self.layer, images)
        return torch.stack(
            [
                activation_match(activation.float(), self.targets),
                total_variation(images, self.tv_beta, scale=2 * half),
                alpha_norm(images, self.norm_alpha, center, half),
            ]
        )

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        terms = self.terms(random_translation(self.image, self.jitter))
        step = self.global_step
        if step < len(self.history):
            self.history[step] = terms.detach()
        weights = torch.tensor([1.0, self.tv_weight, self.norm_weight], device=terms.device)
        self.log("inversion/match", terms[0].mean(), on_step=True, on_epoch=False, batch_size=1)
        return (weights.view(3, 1) * terms).sum()

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        with torch.no_grad():
            self.image.clamp_(*self.pixel_range)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam([self.image], lr=self.lr)


def _image_shape(model: nn.Module, count: int, size: Any, channels: int | None) -> tuple:
    from .api import _expected_channels

    if size is None:
        raise ValueError("feature_inversion needs size=(H, W) (or an int) or init=images")
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    channels = channels or _expected_channels(model) or 3
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
    options of :func:`~.api.extremal_perturbation` (``accelerator``, ``devices``,
    ``precision``, ``logger``, ``progress``, …). The model is left exactly as given.
    Returns N×C×H×W images.
    """
    from .api import RUN_OPTIONS, _quiet_lightning, make_trainer

    if not isinstance(activations, torch.Tensor) or activations.dim() < 2:
        raise ValueError("activations must be a tensor N×… with one row per image")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer; got {max_iter!r}")
    unknown = sorted(set(run) - set(TRAINER_OPTIONS))
    if unknown:
        raise TypeError(f"unknown option(s) {unknown}; valid run options: {list(TRAINER_OPTIONS)}")
    get_layer(model, layer)
    if init is None:
        init = initial_images(
            _image_shape(model, len(activations), size, channels), pixel_range, seed
        )
    elif init.shape[0] != len(activations):
        raise ValueError(f"init has {init.shape[0]} images for {len(activations)} activations")
    with frozen(model):
        device = next(iter(model.parameters()), init).device
        probe = layer_activation(model, layer, init[:1].to(device))
        if probe.shape[1:] != activations.shape[1:]:
            raise ValueError(
                f"activations have shape {tuple(activations.shape[1:])} per image but layer "
                f"{layer!r} gives {tuple(probe.shape[1:])} for images of shape "
                f"{tuple(init.shape[1:])}"
            )
        L.seed_everything(seed, verbose=False)
        module = FeatureInversionModule(
            model,
            layer,
            activations,
            init,
            max_iter=max_iter,
            lr=lr,
            tv_weight=tv_weight,
            tv_beta=tv_beta,
            norm_weight=norm_weight,
            norm_alpha=norm_alpha,
            jitter=jitter,
            pixel_range=pixel_range,
        )
        options = {**RUN_OPTIONS, **run}
        with _quiet_lightning():
            trainer = make_trainer(max_iter, options, list(callbacks or []))
            trainer.fit(module)
    return module.image.detach().cpu()
