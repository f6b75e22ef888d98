"""A progress bar over optimisation steps (one epoch of the Trainer is one step here)."""

from __future__ import annotations

import sys
import time

from lightning.pytorch.callbacks import ProgressBar
from tqdm.auto import tqdm

#: What the bar shows, from the module's logged means over all masks: bar label → key.
SHOWN = {"reward": "reward", "area_err": "area_error"}


class StepProgressBar(ProgressBar):
    """One bar per fit over its optimisation steps, then one line when it ends::

        4 masks:  60%|██████    | 12/20 [00:03<00:02, reward=2.61, area_err=0.042]
        4 masks: 20 steps in 5.1s, reward=2.63, area_err=0.031

    ``reward`` is the mean reward of the masks (the game's score, without the area penalty)
    and ``area_err`` the mean ``|achieved − requested|`` area, both as the module logs them
    (``reward``, ``area_error``). They are read at the logger's interval
    (``trainer.log_every_n_steps``; each read is a host sync) and at the last step. The bar
    itself is erased when the fit ends: the final line is its only trace.
    """

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self._bar: tqdm | None = None
        self._shown: dict[str, str] = {}
        self._started = 0.0
        #: The final line of the last fit (None while none has ended).
        self.final_line: str | None = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer, pl_module) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        num_masks = pl_module.mask_params.shape[0] if hasattr(pl_module, "mask_params") else 0
        self._shown, self._started, self.final_line = {}, time.monotonic(), None
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
        step = trainer.global_step  # steps taken, this one included
        every = trainer.log_every_n_steps
        last = step >= trainer.max_epochs or trainer.should_stop
        if last or (every > 0 and step % every == 0):
            self._read(trainer)
            self._bar.set_postfix(self._shown)  # redrawn now: new values every log interval
        self._bar.update(1)

    def _read(self, trainer) -> None:
        metrics = trainer.progress_bar_metrics  # converts the logged tensors: a host sync
        for label, key in SHOWN.items():
            if key in metrics:
                self._shown[label] = f"{float(metrics[key]):.3g}"

    def on_train_end(self, trainer, pl_module) -> None:
        if self._bar is None:
            return
        self._bar.close()
        self._bar = None
        seconds = time.monotonic() - self._started
        shown = "".join(f", {label}={value}" for label, value in self._shown.items())
        num_masks = pl_module.mask_params.shape[0] if hasattr(pl_module, "mask_params") else 0
        self.final_line = f"{num_masks} masks: {trainer.global_step} steps in {seconds:.1f}s{shown}"
        print(self.final_line, file=sys.stderr, flush=True)

    def on_exception(self, trainer, pl_module, exception) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
