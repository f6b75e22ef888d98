"""How fast the masks still move, per area, and an optional early stop once they settle."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from .sinks import FailSoft, held_masks

#: Read the early-stop counter on the host every this many steps (each read is a host sync).
CHECK_EVERY = 10


class ConvergenceMonitor(Callback):
    """Logs ``area_<a>/mask_change``: the mean absolute change of the visible masks per step,
    ``mean_u |m_t(u) − m_{t−1}(u)|`` averaged over the pairs of area ``a`` (``m_t``: the masks
    step ``t`` sees), and ``mask_change/max`` over all masks, next to the module's own
    ``area_<a>/reward``, ``area_<a>/area_loss``, ``area_<a>/achieved_area``,
    ``area_<a>/area_error`` (same ``area_<a>/`` prefix, so W&B groups them by area), their
    means over all masks (``reward``, ``achieved_area``, ``area_error``: runs with other
    areas share these charts) and ``lambda``. Logged through ``LightningModule.log``
    and so works with any Lightning logger.

    The masks are computed only on the two steps before each logger write (every
    ``trainer.log_every_n_steps``), unless early stopping is on; values stay on the device and
    Lightning reads them at its write interval. Early stop (off by default, as in the
    reference, which always runs ``max_iter`` steps): when the largest per-mask change stays
    below ``early_stop_tol`` for ``window`` consecutive steps, ``trainer.should_stop`` is set
    (checked on the host every ``check_every`` steps, so it may stop up to that many steps
    late). ``stopped_at`` is the step it stopped at (None: ran to the end); ``steps`` the
    number of steps the fit ran.
    """

    def __init__(
        self, early_stop_tol: float | None = None, window: int = 50, check_every: int = CHECK_EVERY
    ) -> None:
        super().__init__()
        if early_stop_tol is not None and (
            isinstance(early_stop_tol, bool)
            or not isinstance(early_stop_tol, (int, float))
            or not early_stop_tol > 0
        ):
            raise ValueError(
                f"early_stop_tol must be None or a positive number; got {early_stop_tol!r}"
            )
        for name, value in (("window", window), ("check_every", check_every)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        self.early_stop_tol = early_stop_tol
        self.window = window
        self.check_every = check_every
        self.stopped_at: int | None = None
        self.steps = 0
        self._log = FailSoft(type(self).__name__)
        self._reset()

    def _reset(self) -> None:
        self._previous: torch.Tensor | None = None
        self._previous_step = -2
        self._steady: torch.Tensor | None = None  # consecutive steps below tol, on the device

    def on_train_start(self, trainer, pl_module) -> None:
        self._reset()
        self.stopped_at = None

    def _needed(self, trainer, step: int) -> bool:
        if self.early_stop_tol is not None:
            return True
        n = trainer.log_every_n_steps
        return n > 0 and ((step + 1) % n == 0 or (step + 2) % n == 0)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        step = trainer.global_step
        if not self._needed(trainer, step):
            return
        with torch.no_grad():
            # a rank's own masks (all of them in one process); the ranks agree on stopping
            masks = pl_module.masks(held_masks(pl_module)).detach().float()
        if self._previous is not None and self._previous_step == step - 1:
            change = (masks - self._previous).abs().flatten(1).mean(1)  # (B,)
            self._record(trainer, pl_module, change, step)
        self._previous, self._previous_step = masks, step

    def _record(self, trainer, pl_module, change: torch.Tensor, step: int) -> None:
        if not change.numel():  # a rank without masks (a chunk smaller than the world)
            change = torch.zeros(pl_module.num_areas, device=change.device)
        metrics: dict[str, Any] = {"mask_change/max": change.max()}
        for k, a in enumerate(pl_module.config.areas):
            metrics[f"area_{a:g}/mask_change"] = change[k :: pl_module.num_areas].mean()
        self._log(
            "logging mask_change",
            lambda: pl_module.log_dict(metrics, on_step=True, on_epoch=False, batch_size=1),
        )
        if self.early_stop_tol is None:
            return
        below = (change.max() < self.early_stop_tol).long()
        self._steady = below if self._steady is None else (self._steady + 1) * below
        if step % self.check_every == 0:
            settled = int(self._steady) >= self.window  # the only host sync, every check_every
            settled = trainer.strategy.reduce_boolean_decision(settled, all=True)
            if settled:
                trainer.should_stop = True
                self.stopped_at = step

    def on_train_end(self, trainer, pl_module) -> None:
        self.steps = trainer.global_step
