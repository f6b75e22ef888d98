"""The LightningModule of one batched extremal-perturbation optimisation over input images."""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from ..config import MethodConfig
from ..engine.classifier import pick_channels_last
from ..ops.area import achieved_area, ones_count
from ..ops.convergence import AREA_RTOL, area_reached
from ..ops.layers import default_layer
from ..ops.masks import (
    compile_pays_off,
    gaussian_mask,
    maxconv_kernel,
    param_grid_shape,
    smooth_max_mask,
)
from ..ops.perturbation import apply_pyramid, compiled_apply_pyramid, perturbation_pyramid
from ..ops.pointing import top_area_region
from ..ops.rewards import RewardFn
from ..ops.saliency import grad_cam
from .mask_game import MaskGameModule

#: Adam steps and learning rate that fit the mask parameters to the warm start's regions.
WARM_FIT_STEPS, WARM_FIT_LR = 50, 0.1

log = logging.getLogger(__name__)
#: Warm-start lines already logged by this process: one line per model layout and outcome,
#: not one per chunk.
_SAID: set[str] = set()


def say_once(level: int, message: str) -> None:
    """Log ``message`` at ``level`` the first time this process sees it."""
    if message not in _SAID:
        _SAID.add(message)
        log.log(level, message)


class ExtremalPerturbationModule(MaskGameModule):
    """Smooth masks over the input image, blending it with a blur (or fade) pyramid.

    Args:
        classifier: frozen model, images B×C×H×W → scores B×classes(×…).
        images: N×C×H×W inputs as the classifier takes them.
        targets, image_index, config, reward: see :class:`MaskGameModule`.
    """

    mask_kind = "input"

    def __init__(
        self,
        classifier: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor,
        image_index: torch.Tensor,
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
            config,
            reward,
            param_shape=(1, *param_grid_shape(*size, config.step)),
            ones=ones_count(size[0] * size[1], config.areas).tolist(),
            mask_shape=size,
        )
        self.size, self.margin = size, margin
        # Where the masks started: "uniform" (``init``) or "grad_cam:<layer>" (the warm start).
        self.start = "uniform"
        # Told each step of the warm start's fit, ``(done, total)``: a progress display's hook.
        self.warm_progress = None
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
        self.num_images = len(images)

    def unperturbable_images(self) -> torch.Tensor:
        """Images equal to every level of their pyramid (to 1e-6): e.g. a flat image under
        blur, where no mask changes what the classifier sees."""
        spread = (self.pyramid - self.pyramid[:, -1:]).abs().flatten(1).amax(1)
        return spread <= 1e-6

    def on_train_start(self) -> None:
        super().on_train_start()
        if self.global_step == 0 and self.config.warm_start != "none":
            self.warm_start()  # not when resuming from a checkpoint

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["start"] = self.start  # a resumed fit says where its masks started

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.start = checkpoint.get("start", "uniform")

    def warm_start(self) -> None:
        """Start each mask at the top-``a`` region of its pair's Grad-CAM map
        (:func:`~..ops.saliency.grad_cam` at ``config.warm_start_layer``, else the model's last
        spatial map; ``auto``: only where the model has one). The parameters are fitted by
        Adam so that the smooth mask matches the region (squared error, ``WARM_FIT_STEPS``
        steps; the classifier is not run). A pair whose map is zero everywhere keeps the
        uniform start. Under DDP rank 0's start is broadcast, so every rank holds the same
        parameters."""
        maps, layer = self._warm_start_maps()
        if maps is None:
            return
        part = self.held()
        areas = self.config.areas
        regions = [top_area_region(maps[p], a).float() for p in range(len(maps)) for a in areas]
        regions = torch.stack(regions)[:, None] if regions else None
        use = (maps.flatten(1).amax(1) > 0).repeat_interleave(self.num_areas)
        if regions is not None:
            self._fit_to_regions(regions, use, part)
        with torch.no_grad():
            own = self.mask_params.data[part]
            own[~use] = float(self.config.init)
            self.mask_params.data[part] = own
        self.mask_params.grad = None
        if bool(use.any()):
            self.start = f"grad_cam:{layer}"
        self._say_warm_start(layer, use, part)
        if self.own is not None:  # every rank started its own masks: share them
            self.mask_params.data = self.gather_own(self.mask_params.data[part])
        elif torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.broadcast(self.mask_params.data, src=0)

    def _say_warm_start(self, layer: str, use: torch.Tensor, part: slice) -> None:
        """Log the layer Grad-CAM read (once per process), and warn when it placed no mask or
        when a fitted start is further from its requested area than the convergence
        tolerance allows (:func:`~..ops.convergence.area_reached`: the start did not take)."""
        if self._is_empty(part) or self.global_rank != 0:
            return
        say_once(logging.INFO, f"warm start: Grad-CAM at layer {layer!r}")
        use = use.cpu()
        if not use.any():
            log.warning(
                f"warm start: every Grad-CAM map at layer {layer!r} is empty: uniform masks"
            )
            return
        with torch.no_grad():
            achieved = achieved_area(self.masks(part)).cpu().double()
        requested = self.requested_areas().repeat(len(achieved) // self.num_areas)
        far = use & ~area_reached(achieved, requested, self.area_cell())
        if far.any():
            worst = float(((achieved - requested).abs() / requested)[far].max())
            log.warning(
                f"warm start: the masks fitted to Grad-CAM at layer {layer!r} start up to "
                f"{worst:.0%} of their area from it (tolerance {AREA_RTOL:.0%})"
            )

    def _warm_start_maps(self) -> tuple[torch.Tensor | None, str]:
        """The Grad-CAM map of each pair whose image this process holds, P×H×W, and its layer;
        for ``warm_start="auto"`` no maps (the uniform start, said in one logged warning) when
        the model has no layer with a spatial grid that runs once, or Grad-CAM cannot run on it."""
        images = self.pyramid[:, -1]  # the pyramid's last level is the image itself
        part, k = self.held(), self.num_areas
        pairs = self.local_images(part)[::k]
        targets = self.mask_target[part][::k]
        probe = images[:1] if len(images) else images.new_zeros(1, *self.pyramid.shape[2:])
        layer = self.config.warm_start_layer
        try:
            layer = layer or default_layer(self.classifier, probe)
            if not len(pairs):
                return images.new_zeros(0, *self.size), layer
            return grad_cam(self.classifier, images[pairs], targets, layer), layer
        except ValueError as error:
            if self.config.warm_start == "auto":
                say_once(logging.WARNING, f"warm start: uniform masks, no Grad-CAM ({error})")
                return None, layer or ""
            raise

    def _fit_to_regions(self, regions: torch.Tensor, use: torch.Tensor, part: slice) -> None:
        """Adam on the parameters of the masks of ``part`` so that each smooth mask matches
        its region (squared error; per mask a mean, summed over masks: each mask's fit is its
        own, whatever the batch; the other masks get no gradient, so Adam leaves them)."""
        with torch.enable_grad():
            fit = torch.optim.Adam([self.mask_params], lr=WARM_FIT_LR)
            self._warm_progress(0)
            for done in range(1, WARM_FIT_STEPS + 1):
                loss = ((self.masks(part) - regions) ** 2).flatten(1).mean(1)[use].sum()
                fit.zero_grad()
                loss.backward()
                fit.step()
                with torch.no_grad():
                    self.mask_params.clamp_(0, 1)
                self._warm_progress(done)

    def _warm_progress(self, done: int) -> None:
        if self.warm_progress is not None:
            self.warm_progress(done, WARM_FIT_STEPS)

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
            return blend(self.pyramid, masks, self.local_images(part))

    def perturbed(self, masks: torch.Tensor, part: slice = slice(None)) -> torch.Tensor:
        """What the classifier sees for the variant (no jitter): B×C×H×W, 2B for dual."""
        return self._blend_all(self.kept(masks), part)

    def _blend_all(self, kept: list[torch.Tensor], part: slice) -> torch.Tensor:
        """Every kept mask's blend, one batch (no concatenation copy for a single game)."""
        blends = [self.blend(m, part) for m in kept]
        return blends[0] if len(blends) == 1 else torch.cat(blends)
