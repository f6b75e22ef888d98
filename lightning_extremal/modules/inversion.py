"""Feature inversion as a LightningModule: the images are the parameters."""

from __future__ import annotations

import torch
from torch import nn

from ..config import InversionConfig
from ..engine.frozen_module import FrozenClassifierModule
from ..ops.inversion import activation_match, alpha_norm, random_translation, total_variation
from ..ops.layers import layer_output

#: Rows of :attr:`FeatureInversionModule.history`: the three terms of the objective per image.
INVERSION_ROWS = ("match", "tv", "norm")


class FeatureInversionModule(FrozenClassifierModule):
    """``x* = argmin_x ‖Φ_L(x) − Φ₀‖²/‖Φ₀‖² + λ_TV·TV^β(x) + λ_α·N_α(x)`` by Adam on the pixels.

    The images are the only trainable parameters (``image``, N×C×H×W); the classifier is
    kept frozen and in eval mode and runs only up to the layer. Pixels are clamped to
    ``pixel_range`` after each step. ``history`` (T×3×N) holds the match, TV and norm terms
    at each step, so callbacks and tests can follow the reconstruction. One epoch is one step.

    Args:
        classifier: the model; ``layer`` a module name in it.
        goal: Φ₀, N×… activations to match. init: N×C×H×W starting images.
        config: Adam's steps and learning rate (``invert_iter``, ``invert_lr``), the priors'
            weights and exponents, the jitter of ±n px per step (``invert_jitter``, 0: off).
        pixel_range: (low, high) of valid pixels; the priors are measured relative to it.
    """

    def __init__(
        self,
        classifier: nn.Module,
        layer: str,
        goal: torch.Tensor,
        init: torch.Tensor,
        config: InversionConfig,
        pixel_range: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        super().__init__()
        self.classifier = classifier
        self.layer = layer
        self.config = config
        self.image = nn.Parameter(init.detach().clone().float())
        self.register_buffer("goal", goal.detach().float(), persistent=False)
        shape = (config.invert_iter, len(INVERSION_ROWS), len(init))
        self.register_buffer("history", torch.zeros(shape))
        self.pixel_range = (float(pixel_range[0]), float(pixel_range[1]))

    def terms(self, images: torch.Tensor) -> torch.Tensor:
        """The objective's three terms per image, 3×N: match, TV^β, α-norm."""
        low, high = self.pixel_range
        center, half = (low + high) / 2, (high - low) / 2
        activation = layer_output(self.classifier, self.layer, images)
        return torch.stack(
            [
                activation_match(activation.float(), self.goal),
                total_variation(images, self.config.tv_beta, scale=2 * half),
                alpha_norm(images, self.config.norm_alpha, center, half),
            ]
        )

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        terms = self.terms(random_translation(self.image, self.config.invert_jitter))
        step = self.global_step
        if step < len(self.history):
            self.history[step] = terms.detach()
        cfg = self.config
        weights = torch.tensor([1.0, cfg.tv_weight, cfg.norm_weight], device=terms.device)
        self.log("inversion/match", terms[0].mean(), on_step=True, on_epoch=False, batch_size=1)
        return (weights.view(3, 1) * terms).sum()

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        with torch.no_grad():
            self.image.clamp_(*self.pixel_range)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam([self.image], lr=self.config.invert_lr)
