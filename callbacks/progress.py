"""Progress on the console: a bar over the optimisation steps of each fit (one epoch of the
Trainer is one step here), the warm start before it as a phase of its own, and, in a job, the
chunk each fit belongs to with the job's ETA."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from lightning.pytorch.callbacks import ProgressBar
from tqdm.auto import tqdm

from lightning_extremal.naming import duration_words

#: What the bar shows, from the module's logged means over all masks: bar label → key.
SHOWN = {"reward": "reward", "area_err": "area_error"}
#: What a mask of each ``mask_kind`` is called on the bar.
MASK_NOUNS = {"channel": "channel masks", "layer-spatial": "layer-grid masks"}
#: A phase before step 1 shorter than this (seconds) gets no line of its own.
QUIET_START_S = 1.0

#: The phase the fits of this thread belong to (e.g. ``chunk 2/5 · job ETA 3 min``), set by
#: :func:`progress_phase`; "" outside any.
_PHASE: ContextVar[str] = ContextVar("lightning_extremal_progress_phase", default="")


@contextmanager
def progress_phase(label: str) -> Iterator[None]:
    """Within this block every bar and line of :class:`StepProgressBar` starts with
    ``label: ``; nested phases are joined with `` · `` (``chunk 1/2 · channel diff``)."""
    outer = _PHASE.get()
    token = _PHASE.set(f"{outer} · {label}" if outer else label)
    try:
        yield
    finally:
        _PHASE.reset(token)


def phase_prefix() -> str:
    """``"<phase>: "`` of the current :func:`progress_phase`, or ""."""
    phase = _PHASE.get()
    return f"{phase}: " if phase else ""


class ChunkClock:
    """The chunks one invocation of a job computes, in turn: each one's label
    (``chunk k/n``, and from the second on ``· job ETA …``: the mean time of the chunks this
    invocation finished, times the chunks left including this one), and a line when each ends
    (``chunk k/n done in 12.3s · job ETA 4 min``) when ``show``."""

    def __init__(self, total: int, show: bool = True) -> None:
        self.total, self.show = total, show
        self.durations: list[float] = []

    def eta(self, chunks_left: int) -> str | None:
        """The job ETA for ``chunks_left`` more chunks, None before any chunk finished."""
        if not self.durations:
            return None
        return duration_words(sum(self.durations) / len(self.durations) * chunks_left)

    def label(self, position: int) -> str:
        """``chunk k/n`` (``position`` = k, from 1), with the job ETA once there is one."""
        eta = self.eta(self.total - position + 1)
        return f"chunk {position}/{self.total}" + (f" · job ETA {eta}" if eta else "")

    @contextmanager
    def chunk(self, position: int) -> Iterator[None]:
        """Chunk ``position``'s computation: its fits carry its label; its time is counted
        once it ends (finished or not: a chunk without readable images is still time spent)."""
        started = time.monotonic()
        with progress_phase(self.label(position)):
            yield
        self.durations.append(time.monotonic() - started)
        if self.show:
            eta = self.eta(self.total - position)
            left = f" · job ETA {eta}" if eta and position < self.total else ""
            print(
                f"lightning-extremal: chunk {position}/{self.total} done in "
                f"{self.durations[-1]:.1f}s{left}",
                file=sys.stderr,
                flush=True,
            )


def fit_label(pl_module) -> str:
    """What one fit optimises, for its bar: ``16 masks`` (input), ``16 channel masks``,
    ``16 layer-grid masks``, ``inversion of 4 images``."""
    if hasattr(pl_module, "mask_params"):
        noun = MASK_NOUNS.get(getattr(pl_module, "mask_kind", None), "masks")
        return counted(pl_module.mask_params.shape[0], noun)
    image = getattr(pl_module, "image", None)
    if image is not None:
        return f"inversion of {counted(image.shape[0], 'images')}"
    return type(pl_module).__name__


def counted(count: int, plural: str) -> str:
    """``3 masks``, ``1 mask``: ``plural`` ends in its ``s``."""
    return f"{count} {plural if count != 1 else plural[:-1]}"


class StepProgressBar(ProgressBar):
    """One bar per fit over its optimisation steps, then one line when it ends; inside a job
    both start with the chunk (:class:`ChunkClock`)::

        chunk 2/3 · job ETA 1 min: 4 masks:  60%|██████    | 12/20 [00:03<00:02, reward=2.61, area_err=0.042]
        chunk 2/3 · job ETA 1 min: 4 masks: 20 steps in 5.1s, reward=2.63, area_err=0.031

    Everything a fit does before its step 1 — the model check, the Grad-CAM warm start and
    its fit of the mask parameters (with torch.compile's first call) — is a phase of its own:
    a bar over the warm start's fit steps, then one line::

        chunk 1/3: warm start (grad_cam:layer4): 50 steps in 3.1s (4.0s before step 1)

    (no warm start: one line only when that phase took over :data:`QUIET_START_S`). The
    step bar starts at step 1, so its rate and ETA are the optimisation's own.

    ``reward`` is the mean reward of the masks (the game's score, without the area penalty)
    and ``area_err`` the mean ``|achieved − requested|`` area, both as the module logs them
    (``reward``, ``area_error``). They are read at the logger's interval
    (``trainer.log_every_n_steps``; each read is a host sync) and at the last step. The bars
    are erased when they end: the lines are their only trace.
    """

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self._bar: tqdm | None = None
        self._warm: tqdm | None = None
        self._shown: dict[str, str] = {}
        self._started = 0.0  # when the fit started (on_train_start), then step 1
        self._warm_times: list[float] = []  # when the warm start's fit began, and ended
        self._warm_steps = 0
        self._prefix = self._label = ""
        self._active = False
        #: The final line of the last fit (None while none has ended).
        self.final_line: str | None = None
        #: The line of the last fit's phase before step 1 (None: none printed).
        self.start_line: str | None = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer, pl_module) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        self._active, self._started = True, time.monotonic()
        self._shown, self.final_line, self.start_line = {}, None, None
        self._warm_times, self._warm_steps = [], 0
        self._prefix, self._label = phase_prefix(), fit_label(pl_module)
        if hasattr(pl_module, "warm_progress"):  # the module's warm start reports its steps
            pl_module.warm_progress = self._warm_step

    def _warm_step(self, done: int, total: int) -> None:
        """The module's warm start: ``done`` of its ``total`` fit steps."""
        now = time.monotonic()
        if not self._warm_times:
            self._warm_times = [now, now]
            self._warm = tqdm(
                total=total,
                desc=f"{self._prefix}warm start of {self._label}",
                unit="step",
                file=sys.stderr,
                dynamic_ncols=True,
                leave=False,
            )
        self._warm.update(done - self._warm.n)
        self._warm_times[1], self._warm_steps = now, done
        if done >= total:  # erased before the module logs where its masks started
            self._warm.close()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self._active or self._bar is not None:
            return
        self._end_start_phase(pl_module, time.monotonic() - self._started)
        self._started = time.monotonic()
        self._bar = tqdm(
            total=trainer.max_epochs,
            initial=trainer.current_epoch,
            desc=f"{self._prefix}{self._label}",
            unit="step",
            file=sys.stderr,
            dynamic_ncols=True,
            leave=False,
        )

    def _end_start_phase(self, pl_module, seconds: float) -> None:
        """Close the warm start's bar and say what happened before step 1."""
        if hasattr(pl_module, "warm_progress"):
            pl_module.warm_progress = None
        if self._warm is not None:
            self._warm.close()
            self._warm = None
        if self._warm_times:
            fit = self._warm_times[1] - self._warm_times[0]
            start = getattr(pl_module, "start", "uniform")
            self.start_line = (
                f"{self._prefix}warm start ({start}): {self._warm_steps} steps in {fit:.1f}s "
                f"({seconds:.1f}s before step 1)"
            )
        elif seconds >= QUIET_START_S:
            self.start_line = f"{self._prefix}{self._label}: {seconds:.1f}s before step 1"
        if self.start_line:
            print(self.start_line, file=sys.stderr, flush=True)

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
        if not self._active:
            return
        if self._bar is None:  # no step ran (e.g. resumed at the end)
            self._end_start_phase(pl_module, time.monotonic() - self._started)
        self._close()
        seconds = time.monotonic() - self._started
        shown = "".join(f", {label}={value}" for label, value in self._shown.items())
        self.final_line = (
            f"{self._prefix}{self._label}: {trainer.global_step} steps in {seconds:.1f}s{shown}"
        )
        print(self.final_line, file=sys.stderr, flush=True)

    def on_exception(self, trainer, pl_module, exception) -> None:
        if hasattr(pl_module, "warm_progress"):
            pl_module.warm_progress = None
        self._close()

    def _close(self) -> None:
        for bar in (self._warm, self._bar):
            if bar is not None:
                bar.close()
        self._warm = self._bar = None
        self._active = False
