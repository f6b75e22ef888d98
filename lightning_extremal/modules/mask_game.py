"""The objective shared by every extremal-perturbation optimisation (input or layer masks)."""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict

import torch
from torch import nn

from ..config import MethodConfig
from ..engine.distributed import gather_objects
from ..engine.frozen_module import FrozenClassifierModule
from ..errors import UnexplainableModelError, non_finite_scores
from ..ops.area import achieved_area, area_loss, lambda_schedule
from ..ops.convergence import converged
from ..ops.rewards import RewardFn, get_reward, mean_reward

#: Rows of ``history``: the game's reward, the area loss and the achieved area per mask.
HISTORY_ROWS = ("reward", "area_loss", "achieved_area")


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
        config: the method's settings (its K ``areas`` among them). reward: overrides
        ``config.reward`` with a callable ``(logits, targets) -> reward``.
        param_shape: shape of one mask's parameters. ones: per area, the ones ``k`` of its
            area step vector (the mask values the area constraint pulls to 1).
        mask_shape: shape of one mask as returned in results.
    """

    #: What a mask covers, one of ``method.kind``'s values: "input" (the image), "channel"
    #: or "layer-spatial" (a layer's), said by each concrete game; None on the abstract ones.
    #: The observing callbacks draw "input" masks only.
    mask_kind: str | None = None

    def __init__(
        self,
        classifier: nn.Module,
        targets: torch.Tensor,
        image_index: torch.Tensor,
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
        self.num_pairs, self.num_areas = len(targets), len(config.areas)
        self.mask_shape = tuple(mask_shape)
        num_masks = self.num_pairs * self.num_areas
        self.register_buffer("mask_image", image_index.repeat_interleave(self.num_areas), False)
        self.register_buffer("mask_target", targets.repeat_interleave(self.num_areas), False)
        self.register_buffer("ones", torch.as_tensor(ones, dtype=torch.long), False)
        self.ones_bounds = (int(min(ones)), int(max(ones)))  # Python ints: no device sync
        self.mask_params = nn.Parameter(torch.full((num_masks, *param_shape), float(config.init)))
        self.register_buffer("history", torch.zeros(config.max_iter, len(HISTORY_ROWS), num_masks))
        self.save_hyperparameters({"method": asdict(config)})
        #: Images this process holds (its block's, under block sharding).
        self.num_images = int(image_index.max()) + 1 if len(image_index) else 0
        #: True: this process was given only its own block of the images and pairs (a rank of
        #: a multi-process job); :meth:`setup` then learns the other ranks' blocks.
        self.block_sharded = False
        #: Under block sharding: the global index of this process's first image and the
        #: masks of its block, and every rank's mask count (set by :meth:`setup`).
        self.image_offset = 0
        self.own: slice | None = None
        self.rank_masks: list[int] = []

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
        """λ at ``step``: ``λ₀·g^t``, or geometric from λ₀ to ``lambda_final`` over the run."""
        cfg = self.config
        at = torch.tensor(step)
        return float(
            lambda_schedule(cfg.lambda0, cfg.lambda_growth, cfg.lambda_final, cfg.max_iter, at)
        )

    def setup(self, stage: str) -> None:
        """Under block sharding, learn every rank's block (one gather of image counts and
        targets) and hold the parameters of all masks, in rank order: rank r's masks are
        ``own``, the masks of images ``image_offset …`` of the whole."""
        trainer = self._trainer
        if not self.block_sharded or trainer is None or trainer.world_size <= 1:
            return
        k = self.num_areas
        blocks = gather_objects(
            (self.num_images, self.mask_target[::k].tolist(), self.mask_image[::k].tolist())
        )
        rank = trainer.global_rank
        offsets = [sum(b[0] for b in blocks[:r]) for r in range(len(blocks))]
        targets = [t for b in blocks for t in b[1]]
        images = [offsets[r] + i for r, b in enumerate(blocks) for i in b[2]]
        self.rank_masks = [len(b[1]) * k for b in blocks]
        start = sum(self.rank_masks[:rank])
        self.own = slice(start, start + self.rank_masks[rank])
        self.image_offset = offsets[rank]
        self.num_pairs = len(targets)
        self.mask_target = torch.tensor(targets, dtype=torch.long).repeat_interleave(k)
        self.mask_image = torch.tensor(images, dtype=torch.long).repeat_interleave(k)
        shape = (len(targets) * k, *self.mask_params.shape[1:])
        self.mask_params = nn.Parameter(torch.full(shape, float(self.config.init)))
        # Each rank records its own masks' history; on_train_end gathers every rank's.
        self.history = torch.zeros(self.config.max_iter, len(HISTORY_ROWS), self.rank_masks[rank])

    def held(self) -> slice:
        """The masks whose inputs this process holds: its own block's under block sharding,
        else all of them."""
        return slice(None) if self.own is None else self.own

    def local_images(self, part: slice = slice(None)) -> torch.Tensor:
        """Index, among the images this process holds, of the image of each mask of ``part``."""
        return self.mask_image[part] - self.image_offset

    def gather_own(self, values: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Under block sharding, every rank's ``values`` of its own masks joined along ``dim``
        in rank order (the values of all masks); else ``values``."""
        if self.own is None:
            return values
        parts = gather_objects(values.detach().cpu())
        return torch.cat(parts, dim).to(values.device)

    def shard(self) -> slice:
        """The masks this process optimises: all of them, or its share under DDP.

        Every rank holds every mask's parameters; rank r computes the loss of its share
        only, scaled by W, so DDP's gradient averaging gives each mask exactly its own
        gradient and every rank takes the same optimiser step. The share is the masks of its
        own block of images under block sharding, else masks ``[r·B/W, (r+1)·B/W)``.
        """
        if self.own is not None:
            return self.own
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
        if part.start == part.stop:  # a rank with no images (a chunk smaller than the world)
            # The same collectives as the other ranks, in the same order.
            if step % self.trainer.log_every_n_steps == 0:
                self.check_finite(torch.zeros(0, device=self.device), part, step)
            self._log_step(torch.zeros(len(HISTORY_ROWS), 0, device=self.device), part, lam)
            return self.mask_params.sum() * 0.0  # DDP expects a gradient from every rank
        padded = self.padded_masks(part)
        masks = self.visible(padded)
        reward = self.game_reward(masks, part, flip=self.config.jitter and step % 2 == 0)
        with torch.autocast(self.device.type, enabled=False):
            loss_area = area_loss(padded, self.ones[self._area_index(part)], self.ones_bounds)
            energy = reward - lam * loss_area
        area = achieved_area(masks.detach())
        if step % self.trainer.log_every_n_steps == 0:  # a host sync, so not every step
            self.check_finite(reward.detach(), part, step)
        stats = torch.stack([reward.detach(), loss_area.detach(), area])
        if step < len(self.history):
            own = part if self.own is None else slice(0, part.stop - part.start)
            self.history[step, :, own] = stats
        self._log_step(stats, part, lam)
        return -energy.sum() * self.trainer.world_size

    def _area_index(self, part: slice) -> torch.Tensor:
        """Index of each mask's area in ``areas`` (mask b has area ``b mod K``)."""
        stop = self.mask_params.shape[0] if part.stop is None else part.stop
        return torch.arange(part.start or 0, stop, device=self.device) % self.num_areas

    def _log_step(self, stats: torch.Tensor, part: slice, lam: float) -> None:
        """Means over all masks of ``reward``, ``achieved_area`` and ``area_error``
        (``|achieved − requested|``; on the progress bar too), and per area ``area_<a>/…``
        of these and of the area loss. Under DDP the ranks' sums and counts are added in one
        all-reduce, so the values are the means over every rank's masks (no host sync here:
        Lightning reads them when it writes, every ``log_every_n_steps``)."""
        index = self._area_index(part)
        requested = self.ones[index].to(stats.dtype) / math.prod(self.mask_shape)
        stats = torch.cat([stats, (stats[2] - requested).abs().unsqueeze(0)])
        sums = torch.zeros(4, self.num_areas, device=stats.device).index_add_(1, index, stats)
        counts = torch.bincount(index, minlength=self.num_areas).to(sums.dtype)
        packed = torch.cat([sums, counts[None]])
        if self.trainer.world_size > 1:
            packed = self.trainer.strategy.reduce(packed, reduce_op="sum")
        sums, counts = packed[:4], packed[4]
        means = sums / counts.clamp(min=1)
        overall_means = sums.sum(1) / counts.sum().clamp(min=1)
        names = (*HISTORY_ROWS, "area_error")
        metrics = {"lambda": torch.tensor(lam)}
        for k, a in enumerate(self.config.areas):
            for row, name in enumerate(names):
                metrics[f"area_{a:g}/{name}"] = means[row, k]
        overall = {name: overall_means[row] for row, name in enumerate(names) if row != 1}
        self.log_dict(metrics, on_step=True, on_epoch=False, batch_size=1)
        self.log_dict(overall, on_step=True, on_epoch=False, batch_size=1, prog_bar=True)

    def on_train_start(self) -> None:
        if self.global_step == 0:  # not when resuming from a checkpoint
            self.start_gradient = self.check_explainable()

    def check_explainable(self) -> torch.Tensor | None:
        """Refuse a classifier that cannot be explained, before any step: its scores must be
        finite and move with the masks (``∂R/∂p ≠ 0``). Each rank checks the masks it holds
        the inputs of and the ranks agree, so all raise together. Returns ``∂R/∂p`` at the
        start (None when nothing reaches the masks); a pair whose gradient alone is zero gets
        a warning (its mask is shaped by the area term only). Images are named by their
        index among this process's images."""
        part = self.held()
        grad = None
        if not self._is_empty(part):
            with torch.enable_grad():
                reward = self.game_reward(self.masks(part), part)
                self.check_finite(reward.detach(), part, 0)
                if reward.requires_grad:
                    (grad,) = torch.autograd.grad(reward.sum(), self.mask_params, allow_unused=True)
        else:
            self.check_finite(torch.zeros(0, device=self.device), part, 0)
        pair_image = self.local_images(part)[:: self.num_areas].cpu()
        moves = torch.zeros(len(pair_image), dtype=torch.bool)
        if grad is not None:
            moving = grad[part].flatten(1).abs().amax(1) > 0
            moves = moving.view(len(pair_image), -1).any(1).cpu()
        moves &= ~self.unperturbable_images().cpu()[pair_image]
        still = (~moves).nonzero().flatten().tolist()
        images = sorted(set(pair_image[still].tolist()))
        if not any(gather_objects(bool(moves.any())) if self.own is not None else [moves.any()]):
            raise UnexplainableModelError(
                "the classifier's scores do not change with the mask (zero gradient for every "
                "mask at the start): the model's output does not depend on its input, or each "
                "image equals its perturbation (e.g. a flat image)",
                images,
                0,
            )
        if still:
            warnings.warn(
                f"the scores of pair(s) {still} (image(s) {images} of the batch) do not change "
                "with the mask at the start: their masks are shaped by the area term only",
                RuntimeWarning,
                stacklevel=2,
            )
        return grad

    def _is_empty(self, part: slice) -> bool:
        stop = self.mask_params.shape[0] if part.stop is None else part.stop
        return (part.start or 0) >= stop

    def unperturbable_images(self) -> torch.Tensor:
        """Per image, whether no mask can perturb it (e.g. a flat image equals its blur; the
        gradient then holds only rounding noise). None by default."""
        return torch.zeros(self.num_images, dtype=torch.bool)

    def check_finite(self, reward: torch.Tensor, part: slice, step: int) -> None:
        """Raise :class:`UnexplainableModelError` naming the images and the step when a
        reward of ``part`` is NaN or infinite (under DDP every rank raises together)."""
        bad = ~torch.isfinite(reward)
        count = bad.sum()
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1:
            count = trainer.strategy.reduce(count.float(), reduce_op="sum")
        if not count:
            return
        images = sorted(set(self.local_images(part)[bad].tolist()))
        raise non_finite_scores(images, step)

    def on_train_end(self) -> None:
        """Under DDP each rank filled its share of the history: gather the whole of it."""
        if self.trainer.world_size <= 1:
            return
        if self.own is not None:
            self.history = self.gather_own(self.history, dim=2)
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

    def requested_areas(self) -> torch.Tensor:
        """The K areas as fractions of a mask (its ``ones`` over its size), (K,) float64."""
        return self.ones.double().cpu() / math.prod(self.mask_shape)

    def area_cell(self) -> float:
        """The share of a mask one of its parameters stands for, ``1/#parameters`` (a cell of
        an input mask's grid, one channel, a cell of a layer's grid): the floor of the area
        tolerance (:func:`~..ops.convergence.area_tolerance`)."""
        return 1 / math.prod(self.mask_params.shape[1:])

    def judge(self, achieved: torch.Tensor, part: slice = slice(None)) -> torch.Tensor:
        """Whether each mask of ``part`` converged, (B,) bool on the CPU
        (:func:`~..ops.convergence.converged`: its area ``achieved`` (B,) within the relative
        tolerance of the requested one, and its reward stalled over the last steps of the
        steps run, read from ``history``). Before the DDP gather of ``on_train_end`` a rank's
        history holds its own masks only: under block sharding those are ``part``'s."""
        trainer = self._trainer
        steps = (
            len(self.history) if trainer is None else min(trainer.global_step, len(self.history))
        )
        rewards = self.history[:steps, 0].detach().cpu()  # T × masks
        if rewards.shape[1] == self.mask_params.shape[0]:
            rewards = rewards[:, part]
        requested = self.requested_areas()[self._area_index(part).cpu()]
        return converged(achieved.detach().cpu(), requested, rewards.T, self.area_cell())

    @torch.no_grad()
    def final(self) -> dict[str, torch.Tensor]:
        """Final masks (P×K×H×W), their unjittered game reward, achieved area and whether each
        converged (:meth:`judge`: area within the relative tolerance and reward stalled), P×K.
        Under block sharding each rank scores its own masks and all ranks get every mask's."""
        part = self.held()
        masks = self.masks(part)
        if self._is_empty(part):
            reward = torch.zeros(0, device=masks.device)
        else:
            reward = self.game_reward(masks, part)  # one unjittered forward over its masks
        self.check_finite(reward, part, self.config.max_iter)
        achieved = achieved_area(masks)
        masks, reward, achieved = (self.gather_own(t) for t in (masks, reward, achieved))
        shape = (self.num_pairs, self.num_areas)
        achieved = achieved.cpu()
        return {
            "masks": masks.reshape(*shape, *self.mask_shape).cpu(),
            "rewards": reward.view(shape).cpu(),
            "achieved_areas": achieved.view(shape),
            "converged": self.judge(achieved).view(shape),
        }
