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


class ModelFailed(UsageError):
    """The classifier raised in its forward pass (``cause``, e.g. a model built for 128 px
    given 224 px images): one line naming the model, the batch shape and the original
    exception; ``--debug`` shows its traceback."""

    def __init__(self, model: str, shape: tuple[int, ...], cause: BaseException) -> None:
        self.model, self.shape, self.cause = model, tuple(shape), cause
        batch = "×".join(str(n) for n in self.shape)
        super().__init__(
            f"{model} failed on a batch of shape {batch}: {type(cause).__name__}: {cause}"
        )

    def named(self, name: str) -> ModelFailed:
        """The same failure, naming the model as the user configured it (``model=…``)."""
        return ModelFailed(f"model {name!r}", self.shape, self.cause)


class Interrupted(BaseException):
    """A job stopped at a step boundary by SIGINT or SIGTERM (``signum``): the interrupted
    chunk is not kept, the finished ones are, and rerunning the command resumes. A
    ``BaseException``, like ``KeyboardInterrupt``, so that no ``except Exception`` (a
    fail-soft logger, a retry) takes it for a failure to recover from."""

    def __init__(self, signum: int, message: str = "") -> None:
        self.signum = signum
        super().__init__(message or f"stopped by signal {signum}")

    @property
    def exit_status(self) -> int:
        """The shell's status of a process ended by this signal: 128 + its number."""
        return 128 + self.signum
