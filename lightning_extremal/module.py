"""The LightningModule of one batched extremal-perturbation optimisation."""

from __future__ import annotations

import math
from dataclasses import asdict

import torch
from torch import nn

from .area import achieved_area, area_loss, ones_count
from .config import MethodConfig
from .freeze import FrozenClassifierModule
from .masks import (
    compile_pays_off,
    gaussian_mask,
    maxconv_kernel,
    param_grid_shape,
    smooth_max_mask,
)
from .perturbation import apply_pyramid, compiled_apply_pyramid, perturbation_pyramid
from .rewards import RewardFn, get_reward, mean_reward

#: Rows of ``history``: the game's reward, the area loss and the achieved area per mask.
HISTORY_ROWS = ("reward", "area_loss", "area")


class MaskGameModule(FrozenClassifierModule):
    """The objective shared by every extremal-perturbation optimisation.

    Masks for P (target, image) pairs × K areas are optimised together; mask ``b = p·K + k``
    explains pair ``p`` at area ``areas[k]``. Per mask the energy is
    ``E_b = R_b − λ_t·L_area(m_b)`` with ``λ_t = λ₀·g^t``, and the loss is ``−Σ_b E_b``, so
    each mask's gradient is the same as if it were optimised alone.

    Subclasses say what a mask is and how it perturbs the classifier: ``padded_masks(part)``
    (the masks the area constraint ranks), ``visible(padded)`` (the part that perturbs) and
    ``scores(kept, part)`` (classifier outputs for each perturbation in ``kept``).

    Args:
        classifier: frozen model, images → scores B×classes(×…).
        targets: (P,) class of each pair. image_index: (P,) image of each pair.
        areas: the K target areas. config: the method's knobs. reward: overrides
        ``config.reward`` with a callable ``(logits, targets) -> reward``.
        param_shape: shape of one mask's parameters. ones: per area, the ones ``k`` of its
            area step vector (the mask values the area constraint pulls to 1).
        mask_shape: shape of one mask as returned in results.
    """

    def __init__(
        self,
        classifier: nn.Module,
        targets: torch.Tensor,
        image_index: torch.Tensor,
        areas: list[float],
        config: MethodConfig,
        reward: RewardFn | None,
        param_shape: tuple[int, ...],
        ones: list[int],
        mask_shape: tuple[int, ...],
    ) -> None:
        super().__init__()
        self.classifier = classifier
        self.config = config
        self.reward_fn = get_reward(config.reward if reward is None else reward)
        self.num_pairs, self.num_areas = len(targets), len(areas)
        self.mask_shape = tuple(mask_shape)
        num_masks = self.num_pairs * self.num_areas
        self.register_buffer("mask_image", image_index.repeat_interleave(self.num_areas), False)
        self.register_buffer("mask_target", targets.repeat_interleave(self.num_areas), False)
        self.register_buffer("ones", torch.as_tensor(ones, dtype=torch.long), False)
        self.ones_bounds = (int(min(ones)), int(max(ones)))  # Python ints: no device sync
        self.mask_params = nn.Parameter(torch.full((num_masks, *param_shape), float(config.init)))
        self.register_buffer("history", torch.zeros(config.max_iter, len(HISTORY_ROWS), num_masks))
        self.save_hyperparameters({"method": asdict(config), "areas": list(areas)})

    def padded_masks(self, part: slice = slice(None)) -> torch.Tensor:
        raise NotImplementedError

    def visible(self, padded: torch.Tensor) -> torch.Tensor:
        return padded

    def scores(self, kept: list[torch.Tensor], part: slice, flip: bool) -> torch.Tensor:
        """Classifier outputs (len(kept)·B)×classes(×…) for the perturbations by ``kept``."""
        raise NotImplementedError

    def masks(self, part: slice = slice(None)) -> torch.Tensor:
        """The current masks (the part that perturbs), B×…, in [0, 1]."""
        return self.visible(self.padded_masks(part))

    def kept(self, masks: torch.Tensor) -> list[torch.Tensor]:
        """What each variant keeps: ``[m]`` (preserve), ``[1 − m]`` (delete), both (dual)."""
        if self.config.variant == "preserve":
            return [masks]
        if self.config.variant == "delete":
            return [1 - masks]
        return [masks, 1 - masks]

    def lambda_at(self, step: int) -> float:
        """``λ_t = λ₀·g^t``."""
        return self.config.lambda0 * self.config.lambda_growth**step

    def shard(self) -> slice:
        """The masks this process optimises: all of them, or its share under DDP.

        Every rank holds every mask; rank r computes the loss of masks ``[r·B/W, (r+1)·B/W)``
        only, scaled by W, so DDP's gradient averaging gives each mask exactly its own
        gradient and every rank takes the same optimiser step.
        """
        trainer = self._trainer
        world = trainer.world_size if trainer is not None else 1
        if world <= 1:
            return slice(0, self.mask_params.shape[0])
        per_rank = math.ceil(self.mask_params.shape[0] / world)
        start = min(trainer.global_rank * per_rank, self.mask_params.shape[0])
        return slice(start, min(start + per_rank, self.mask_params.shape[0]))

    def game_reward(
        self, masks: torch.Tensor, part: slice = slice(None), flip: bool = False
    ) -> torch.Tensor:
        """The variant's reward of each mask, (B,): ``R(m)``, ``−R(1−m)`` or ``R(m) − R(1−m)``."""
        variant = self.config.variant
        kept = self.kept(masks)
        targets = self.mask_target[part].repeat(len(kept))
        scores = mean_reward(self.reward_fn, self.scores(kept, part, flip).float(), targets)
        if variant == "preserve":
            return scores
        if variant == "delete":
            return -scores
        preserved, deleted = scores.chunk(2)
        return preserved - deleted

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        step = self.global_step
        lam = self.lambda_at(step)
        part = self.shard()
        padded = self.padded_masks(part)
        masks = self.visible(padded)
        reward = self.game_reward(masks, part, flip=self.config.jitter and step % 2 == 0)
        with torch.autocast(self.device.type, enabled=False):
            loss_area = area_loss(padded, self.ones[self._area_index(part)], self.ones_bounds)
            energy = reward - lam * loss_area
        area = achieved_area(masks.detach())
        stats = torch.stack([reward.detach(), loss_area.detach(), area])
        if step < len(self.history):
            self.history[step, :, part] = stats
        self._log_step(stats, part, lam)
        return -energy.sum() * self.trainer.world_size

    def _area_index(self, part: slice) -> torch.Tensor:
        """Index of each mask's area in ``areas`` (mask b has area ``b mod K``)."""
        return torch.arange(part.start or 0, part.stop, device=self.device) % self.num_areas

    def _log_step(self, stats: torch.Tensor, part: slice, lam: float) -> None:
        """Per-area means of reward, area loss and achieved area (no host sync here)."""
        index = self._area_index(part)
        sums = torch.zeros(3, self.num_areas, device=stats.device).index_add_(1, index, stats)
        counts = torch.bincount(index, minlength=self.num_areas).clamp(min=1)
        means = sums / counts
        metrics = {"lambda": torch.tensor(lam)}
        for k, a in enumerate(self.hparams["areas"]):
            for row, name in enumerate(("reward", "area_loss", "achieved_area")):
                metrics[f"area_{a:g}/{name}"] = means[row, k]
        distributed = self.trainer.world_size > 1
        self.log_dict(metrics, on_step=True, on_epoch=False, batch_size=1, sync_dist=distributed)

    def on_train_end(self) -> None:
        """Under DDP each rank filled its share of the history: gather the whole of it."""
        if self.trainer.world_size <= 1:
            return
        gathered = self.all_gather(self.history)  # W × T × 3 × B
        per_rank = math.ceil(self.mask_params.shape[0] / self.trainer.world_size)
        for rank in range(self.trainer.world_size):
            part = slice(rank * per_rank, (rank + 1) * per_rank)
            self.history[:, :, part] = gathered[rank][:, :, part]

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        with torch.no_grad():
            self.mask_params.clamp_(0, 1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        cfg = self.config
        if cfg.optimizer == "adam":
            return torch.optim.Adam([self.mask_params], lr=cfg.lr, betas=tuple(cfg.adam_betas))
        return torch.optim.SGD(
            [self.mask_params], lr=cfg.lr, momentum=cfg.momentum, dampening=cfg.dampening
        )

    @torch.no_grad()
    def final(self) -> dict[str, torch.Tensor]:
        """Final masks (P×K×H×W), their unjittered game reward and achieved area (P×K)."""
        masks = self.masks()
        reward = self.game_reward(masks)  # one unjittered forward over all masks
        shape = (self.num_pairs, self.num_areas)
        return {
            "masks": masks.reshape(*shape, *self.mask_shape).cpu(),
            "rewards": reward.view(shape).cpu(),
            "areas": achieved_area(masks).view(shape).cpu(),
        }


class ExtremalPerturbationModule(MaskGameModule):
    """Smooth masks over the input image, blending it with a blur (or fade) pyramid.

    Args:
        classifier: frozen model, images B×C×H×W → scores B×classes(×…).
        images: N×C×H×W inputs as the classifier takes them.
        targets, image_index, areas, config, reward: see :class:`MaskGameModule`.
    """

    def __init__(
        self,
        classifier: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor,
        image_index: torch.Tensor,
        areas: list[float],
        config: MethodConfig,
        reward: RewardFn | None = None,
    ) -> None:
        size = tuple(images.shape[-2:])
        # The area ranks the mask over a margin around the image, so that border parameters
        # feel the same area pressure as inner ones (ranking the visible image alone pulls
        # masks into the corners); the target is still a fraction of the visible image.
        margin = math.ceil(config.sigma) if config.area_margin is None else config.area_margin
        super().__init__(
            classifier,
            targets,
            image_index,
            areas,
            config,
            reward,
            param_shape=(1, *param_grid_shape(*size, config.step)),
            ones=ones_count(size[0] * size[1], areas).tolist(),
            mask_shape=size,
        )
        self.size, self.margin = size, margin
        # torch.compile the smooth max: True | False | "auto" (when the run is long enough).
        self.compiled: bool | str = "auto"
        # Run the classifier on channels-last inputs: True | False | "auto" (when it has a
        # 2-D convolution and gives the same scores that way; decided at the first call).
        self.channels_last: bool | str = "auto"
        self._channels_last_on: bool | None = None
        with torch.no_grad():
            pyramid = perturbation_pyramid(
                images.float(),
                config.perturbation,
                config.num_levels,
                config.max_blur,
                config.blur_padding,
            )
        self.register_buffer("pyramid", pyramid, persistent=False)
        self.register_buffer("kernel", maxconv_kernel(config.step, config.sigma), False)

    def padded_masks(self, part: slice = slice(None)) -> torch.Tensor:
        """The current masks with their margin, B×1×(H+2g)×(W+2g) in [0, 1]."""
        cfg = self.config
        params = self.mask_params[part]
        with torch.autocast(self.device.type, enabled=False):
            if cfg.smoothing == "gaussian":
                return gaussian_mask(params, cfg.step, cfg.sigma, self.size, self.margin)
            return smooth_max_mask(
                params, self.kernel, self.size, cfg.coldness, self.margin, self.use_compiled()
            )

    def use_compiled(self) -> bool:
        """Whether the smooth max runs compiled: ``compiled``, or for ``"auto"`` whether this
        optimisation's work per mask pays off the compile time (:func:`~.masks.compile_pays_off`)."""
        if self.compiled != "auto":
            return bool(self.compiled)
        pixels = (self.size[0] + 2 * self.margin) * (self.size[1] + 2 * self.margin)
        return compile_pays_off(self.kernel.shape[0] * pixels * self.config.max_iter)

    def visible(self, padded: torch.Tensor) -> torch.Tensor:
        """Crop the margin: B×1×H×W."""
        g = self.margin
        return padded[..., g : g + self.size[0], g : g + self.size[1]]

    def scores(self, kept: list[torch.Tensor], part: slice, flip: bool) -> torch.Tensor:
        x = self._blend_all(kept, part)
        x = x.flip(-1) if flip else x
        if self._channels_last_on is None:
            self._channels_last_on = pick_channels_last(self.classifier, x, self.channels_last)
        if self._channels_last_on:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.classifier(x)

    def blend(self, masks: torch.Tensor, part: slice = slice(None)) -> torch.Tensor:
        """``m ⊗ x``: each image blended with its pyramid by the mask (fp32), B×C×H×W."""
        blend = compiled_apply_pyramid if self.use_compiled() else apply_pyramid
        with torch.autocast(self.device.type, enabled=False):
            return blend(self.pyramid, masks, self.mask_image[part])

    def perturbed(self, masks: torch.Tensor, part: slice = slice(None)) -> torch.Tensor:
        """What the classifier sees for the variant (no jitter): B×C×H×W, 2B for dual."""
        return self._blend_all(self.kept(masks), part)

    def _blend_all(self, kept: list[torch.Tensor], part: slice) -> torch.Tensor:
        """Every kept mask's blend, one batch (no concatenation copy for a single game)."""
        blends = [self.blend(m, part) for m in kept]
        return blends[0] if len(blends) == 1 else torch.cat(blends)


def pick_channels_last(classifier: nn.Module, probe: torch.Tensor, setting: bool | str) -> bool:
    """Convert ``classifier`` to channels-last memory format if ``setting`` asks for it.

    ``True`` converts; ``False`` leaves it; ``"auto"`` converts when the classifier has a
    ``Conv2d`` (where oneDNN/cuDNN run faster that way: ~20 % on CPU convnets, see
    benchmarks/RESULTS.md) and gives the same scores on one channels-last image of ``probe``
    (B×C×H×W) — a model that reshapes with ``.view`` fails or differs and stays as it was.
    The caller's model gets its format back at the end (:func:`~.freeze.frozen`).
    """
    if setting is False or probe.dim() != 4:
        return False
    if setting is True:
        classifier.to(memory_format=torch.channels_last)
        return True
    if not any(isinstance(m, nn.Conv2d) for m in classifier.modules()):
        return False
    x = probe[:1].detach()
    with torch.no_grad():
        expected = classifier(x).float()
        try:
            classifier.to(memory_format=torch.channels_last)
            got = classifier(x.contiguous(memory_format=torch.channels_last)).float()
            same = got.shape == expected.shape and bool(
                torch.allclose(got, expected, rtol=1e-2, atol=1e-2 * float(expected.abs().max()))
            )
        except Exception:  # noqa: BLE001 - a model that cannot take channels-last inputs
            same = False
    if not same:
        classifier.to(memory_format=torch.contiguous_format)
    return same
