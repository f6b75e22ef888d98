"""Lightning callbacks that observe mask optimisations (installed as ``lightning_extremal.callbacks``)."""

from .progress import StepProgressBar

__all__ = ["StepProgressBar"]
