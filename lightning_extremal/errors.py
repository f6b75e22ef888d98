"""The exceptions that mean "the user can fix this": the command line prints their message on
one line and exits 2 (no traceback unless ``--debug``)."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input or a refused request (a locked or foreign output folder, a model that cannot
    be explained); the message names the bad value and what to do instead."""


class UnexplainableModelError(UsageError):
    """The classifier cannot be explained: its scores are not finite, or they do not change
    with the mask. ``images``: positions in the batch of the images concerned; ``step``: the
    optimisation step where it was seen."""

    def __init__(self, message: str, images: list[int], step: int) -> None:
        super().__init__(message)
        self.images, self.step = list(images), step


def non_finite_scores(images: list[int], step: int) -> UnexplainableModelError:
    """The error of scores that are NaN or infinite at ``step`` for ``images`` of the batch."""
    return UnexplainableModelError(
        f"the classifier's scores are not finite (NaN or inf) at step {step} for image(s) "
        f"{images} of the batch: the model cannot be explained (check its weights and its "
        "input range)",
        images,
        step,
    )
