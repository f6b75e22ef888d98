"""The LightningModule of meaningful perturbations (Fong & Vedaldi, ICCV 2017): deletion masks
found by an L1 + total-variation penalty, the method extremal perturbations replace."""

from __future__ import annotations

from dataclasses import asdict

import torch
from torch import nn

from ..config import MeaningfulConfig
from ..engine.frozen_module import FrozenClassifierModule
from ..errors import non_finite_scores
from ..ops.meaningful import (
    blur_blend,
    deleted_area,
    l1_term,
    total_variation,
    translate,
    upsample_mask,
)
from ..ops.perturbation import gaussian_blur
from ..ops.rewards import mean_reward, simple_reward

#: Rows of ``history``: the objective, its three terms (λ-weighted) and the deleted area.
HISTORY_ROWS = ("loss", "score", "l1", "tv", "deleted_area")


class MeaningfulPerturbationModule(FrozenClassifierModule):
    """Meaningful perturbations for P (image, target) pairs × K values of λ₁, optimised together.

    Mask ``b = p·K + k`` explains pair ``p`` with ``λ₁ = l1_coeffs[k]``. Its coarse parameters
    ``M_b`` (``grid``×``grid``, the only trainable tensor) give ``m_b = up(M_b)`` (1 keeps a
    pixel, 0 blurs it away) and its loss is

        ``λ₁·‖1 − m_b‖₁ + λ₂·TV_β(m_b) + f_c(Φ(x(· − τ); m_b))``

    with ``Φ`` the blend of the image with its blur (σ₀ = ``blur_sigma``) by ``m``
    (:func:`~..ops.meaningful.blur_blend`), ``τ`` a random translation of up to
    ``jitter`` px per step and ``f_c`` the target's softmax probability (or logit). The loss
    summed over masks gives each mask its own gradient.

    Why not :class:`~.mask_game.MaskGameModule`: its energy is ``R − λ_t·L_area`` with a
    *requested* area per mask (the rank-statistics loss, a growing λ_t, ``converged`` judged
    against the request). Here nothing requests an area — the deleted area is an outcome of
    λ₁ — so that machinery does not fit; this module keeps the same shape (frozen classifier,
    batched masks, a preallocated on-device ``history``, finite checks naming the images).

    Args:
        classifier: frozen model, images N×C×H×W → scores N×classes(×…).
        images: N×C×H×W inputs as the classifier takes them.
        targets: (P,) class of each pair. image_index: (P,) image of each pair.
        config: the method's knobs (``l1_coeffs`` gives K).
    """

    def __init__(
        self,
        classifier: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor,
        image_index: torch.Tensor,
        config: MeaningfulConfig,
    ) -> None:
        super().__init__()
        self.classifier = classifier
        self.config = config
        self.num_pairs, self.num_coeffs = len(targets), len(config.l1_coeffs)
        self.size = tuple(images.shape[-2:])
        num_masks = self.num_pairs * self.num_coeffs
        coeffs = torch.tensor(config.l1_coeffs, dtype=torch.float32).repeat(self.num_pairs)
        self.register_buffer("l1_coeff", coeffs, False)
        self.register_buffer("mask_image", image_index.repeat_interleave(self.num_coeffs), False)
        self.register_buffer("mask_target", targets.repeat_interleave(self.num_coeffs), False)
        with torch.no_grad():
            blurred = gaussian_blur(images.float(), config.blur_sigma, config.blur_padding)
        self.register_buffer("images", images.float(), persistent=False)
        self.register_buffer("blurred", blurred, persistent=False)
        grid = (num_masks, 1, config.grid, config.grid)
        self.mask_params = nn.Parameter(torch.full(grid, float(config.init)))
        self.register_buffer("history", torch.zeros(config.max_iter, len(HISTORY_ROWS), num_masks))
        self.save_hyperparameters({"method": asdict(config)})

    def masks(self) -> torch.Tensor:
        """The current masks ``m = up(M)``, B×1×H×W in [0, 1] (1 keeps the pixel)."""
        return upsample_mask(self.mask_params, self.size)

    def perturbed(self, masks: torch.Tensor, shift: tuple[int, int] = (0, 0)) -> torch.Tensor:
        """``Φ(x(· − τ); m)``: each mask's image, translated by ``shift``, blended with its
        blur by the mask (m = 1: the image, m = 0: the blurred copy), B×C×H×W."""
        images, blurred = translate(self.images, *shift), translate(self.blurred, *shift)
        return blur_blend(images, blurred, masks, self.mask_image)

    def class_score(self, images: torch.Tensor) -> torch.Tensor:
        """``f_c``: each mask's target probability (``score="softmax"``) or logit, (B,)."""
        logits = self.classifier(images).float()
        if self.config.score == "softmax":
            logits = logits.softmax(1)
        return mean_reward(simple_reward, logits, self.mask_target)

    def objective(self, shift: tuple[int, int] = (0, 0)) -> dict[str, torch.Tensor]:
        """The weighted terms of each mask's loss and their sum ``loss``, each (B,)."""
        cfg = self.config
        masks = self.masks()
        with torch.autocast(self.device.type, enabled=False):
            terms = {
                "score": self.class_score(self.perturbed(masks, shift)),
                "l1": self.l1_coeff * l1_term(masks),
                "tv": cfg.tv_coeff * total_variation(masks, cfg.tv_beta),
            }
        terms["loss"] = terms["score"] + terms["l1"] + terms["tv"]
        terms["deleted_area"] = deleted_area(masks.detach())
        return terms

    def jitter_shift(self) -> tuple[int, int]:
        """``τ``: a random translation in ``[−jitter, jitter]²`` px (the global RNG, so a
        seeded run repeats), or none."""
        j = self.config.jitter
        if j == 0:
            return (0, 0)
        dy, dx = torch.randint(-j, j + 1, (2,)).tolist()
        return (dy, dx)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        step = self.global_step
        terms = self.objective(self.jitter_shift())
        if step % self.trainer.log_every_n_steps == 0:  # a host sync, so not every step
            self.check_finite(terms["score"].detach(), step)
        stats = torch.stack([terms[name].detach() for name in HISTORY_ROWS])
        if step < len(self.history):
            self.history[step] = stats
        means = {name: stats[row].mean() for row, name in enumerate(HISTORY_ROWS)}
        self.log_dict(means, on_step=True, on_epoch=False, batch_size=1, prog_bar=True)
        return terms["loss"].sum()

    def on_train_start(self) -> None:
        if self.global_step == 0:
            with torch.no_grad():
                self.check_finite(self.class_score(self.perturbed(self.masks())), 0)

    def check_finite(self, score: torch.Tensor, step: int) -> None:
        """Raise :class:`UnexplainableModelError` naming the images and the step when a score
        is NaN or infinite."""
        bad = ~torch.isfinite(score)
        if not bad.any():
            return
        images = sorted(set(self.mask_image[bad].tolist()))
        raise non_finite_scores(images, step)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        with torch.no_grad():
            self.mask_params.clamp_(0, 1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam([self.mask_params], lr=self.config.lr)

    @torch.no_grad()
    def final(self) -> dict[str, torch.Tensor]:
        """The deletion masks ``1 − m`` (P×K×H×W: 1 where the image is blurred away), the
        unjittered score ``f_c`` of each perturbed image and the deleted area, P×K."""
        terms = self.objective()
        self.check_finite(terms["score"], self.config.max_iter)
        shape = (self.num_pairs, self.num_coeffs)
        return {
            "masks": (1 - self.masks()).reshape(*shape, *self.size).cpu(),
            "scores": terms["score"].view(shape).cpu(),
            "achieved_areas": terms["deleted_area"].view(shape).cpu(),
        }
