"""A progress bar over optimisation steps (one epoch of the Trainer is one step here)."""

from __future__ import annotations

import sys

from lightning.pytorch.callbacks import ProgressBar
from tqdm.auto import tqdm

#: Refresh the reward shown in the bar every this many steps (each read is a host sync).
POSTFIX_EVERY = 25


class StepProgressBar(ProgressBar):
    """``16 masks: 312/800 [00:41<01:04, loss=-3.21]``: one bar over the optimisation's steps
    (the loss refreshed every ``POSTFIX_EVERY`` steps)."""

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self._bar: tqdm | None = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer, pl_module) -> None:
        if self._enabled and trainer.is_global_zero:
            num_masks = pl_module.mask_params.shape[0] if hasattr(pl_module, "mask_params") else 0
            self._bar = tqdm(
                total=trainer.max_epochs,
                initial=trainer.current_epoch,
                desc=f"{num_masks} masks",
                unit="step",
                file=sys.stderr,
                dynamic_ncols=True,
                leave=False,
            )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._bar is None:
            return
        self._bar.update(1)
        if trainer.global_step % POSTFIX_EVERY == 0 and outputs is not None:
            self._bar.set_postfix(loss=f"{float(outputs['loss']):.3g}")

    def on_train_end(self, trainer, pl_module) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.on_train_end(trainer, pl_module)
