"""Feature inversion as a LightningModule: the images are the parameters."""

from __future__ import annotations

import torch
from torch import nn

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
