"""Stopping a job cleanly: SIGINT or SIGTERM ends the running fit at its next step boundary
(:class:`StopAtSignal`, in every Trainer) with :class:`~lightning_extremal.errors.Interrupted`,
so the job keeps its finished chunks and can resume; a second signal stops at once."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

from lightning.pytorch.callbacks import Callback

from ..errors import Interrupted

#: The signals a job stops at (Ctrl-C; ``kill``, a scheduler's pre-emption).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Signals received while :func:`stop_on_signals` is active (the first one decides).
_received: list[int] = []


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """For the duration of a job: SIGINT/SIGTERM ask it to stop at the next step boundary
    (:func:`stop_if_requested`); the previous handlers are restored afterwards. Whatever the
    job raises once a signal came (e.g. Lightning's own SIGTERM exit) becomes
    :class:`Interrupted`. Outside the main thread (where Python cannot set handlers) it does
    nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    _received.clear()
    for signum in STOP_SIGNALS:
        signal.signal(signum, _request_stop)
    try:
        yield
    except BaseException as error:
        if _received and not isinstance(error, Interrupted):
            raise Interrupted(_received[0]) from error
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _received.clear()


def _request_stop(signum: int, _frame) -> None:
    if _received:  # asked twice: stop now, wherever the job is
        raise Interrupted(_received[0])
    _received.append(signum)
    name = signal.Signals(signum).name
    print(
        f"lightning-extremal: {name} received: stopping after the current step "
        "(send it again to stop at once)",
        file=sys.stderr,
        flush=True,
    )


def stop_if_requested() -> None:
    """Raise :class:`Interrupted` if a stop signal came since the job started."""
    if _received:
        raise Interrupted(_received[0])


class StopAtSignal(Callback):
    """Ends a fit after the step in progress once a stop signal came (each optimisation
    step is one training batch)."""

    def on_train_batch_end(self, *args, **kwargs) -> None:
        stop_if_requested()
