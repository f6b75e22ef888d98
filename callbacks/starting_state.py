"""The scalars of the masks the optimisation starts from, logged at step 0."""

from __future__ import annotations

from lightning.pytorch.callbacks import Callback

from .sinks import FailSoft


class StartingState(Callback):
    """Writes the values the module logged at optimisation step 0 (the starting masks'
    ``reward``, ``achieved_area``, ``area_error``, ``area_<a>/…``, ``lambda``) to the
    trainer's loggers at step 0.

    Lightning writes logged values every ``trainer.log_every_n_steps`` steps, the first time
    at step ``n − 1``, so without this the charts would start after the first ``n − 1``
    updates and never show where the masks started. The values are read once at the start of
    step 1 (Lightning has collected step 0's by then), so put this callback before the ones
    that log media at later steps (a W&B run drops rows behind its current step). Nothing is
    written when Lightning writes step 0 itself (``log_every_n_steps`` = 1) or logging is off
    (0). Logging is fail-soft, like every observing callback.
    """

    def __init__(self) -> None:
        super().__init__()
        self.logged = False
        self._log = FailSoft(type(self).__name__)

    def on_train_start(self, trainer, pl_module) -> None:
        self.logged = trainer.log_every_n_steps in (0, 1)  # Lightning's own step 0, or none

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self.logged and trainer.global_step == 1:
            self._write(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        if not self.logged and trainer.global_step == 1:  # a fit of one step
            self._write(trainer)

    def _write(self, trainer) -> None:
        self.logged = True
        metrics = {k: float(v) for k, v in trainer.logged_metrics.items() if v.numel() == 1}
        if not metrics or not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            self._log("logging the starting state", lambda lg=logger: lg.log_metrics(metrics, 0))
