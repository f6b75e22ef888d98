"""The one place where keyword options become the typed configs: the settings of a method
(``MethodConfig``, ``MeaningfulConfig``, ``InversionConfig``) and of the run
(``TrainerConfig``), each validated once, and the objects a call passes along (:class:`Fit`).
Jobs hold the configs already and call the typed entry points with them whole."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from ..config import TrainerConfig, validate_trainer
from ..engine.loggers import check_logger

Config = TypeVar("Config")


@dataclass
class Fit:
    """What one call passes to its fits besides settings: objects no config file holds."""

    #: A Lightning logger, or "wandb" | "csv" | "tensorboard" | "none" (writing under
    #: ``default_root_dir``); False: none.
    logger: Any = False
    callbacks: list = field(default_factory=list)  # Lightning callbacks of every fit
    batch_size: int | None = None  # pairs per Lightning fit; None: all in one fit
    ckpt_path: str | None = None  # resume the (one) fit from this checkpoint
    default_root_dir: str | None = None  # where Lightning and a named logger write
    #: True: the images given are this rank's own block of a multi-process job, and the
    #: result covers every rank's.
    sharded: bool = False


#: The names of :class:`Fit`'s fields.
FIT_OPTIONS = tuple(f.name for f in fields(Fit))
#: The run options every API call takes: the ``TrainerConfig`` fields and :data:`FIT_OPTIONS`.
RUN_OPTIONS = tuple(f.name for f in fields(TrainerConfig)) + FIT_OPTIONS


def to_configs(
    options: dict[str, Any], method: Config, run_options: tuple[str, ...] = RUN_OPTIONS
) -> tuple[Config, TrainerConfig, Fit]:
    """Keyword ``options`` as ``method`` (a config dataclass instance, its fields replaced),
    the ``TrainerConfig`` and the :class:`Fit` objects, validated (the method's own checks
    are the caller's); an unknown name is a ``TypeError`` listing the valid ones.
    ``run_options``: the run options this call accepts."""
    method_keys = {f.name for f in fields(method)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - method_keys - set(run_options))
    if unknown:
        valid = sorted(method_keys | set(run_options))
        raise TypeError(f"unknown option(s) {unknown}; valid options: {valid}")
    trainer_keys = {f.name for f in fields(TrainerConfig)}
    trainer = TrainerConfig(**{k: v for k, v in options.items() if k in trainer_keys})
    fit = Fit(**{k: v for k, v in options.items() if k in FIT_OPTIONS})
    fit.callbacks = list(fit.callbacks or [])
    validate_trainer(trainer)
    check_logger(fit.logger)
    size = fit.batch_size
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"batch_size must be a positive integer or None; got {fit.batch_size!r}")
    method = replace(method, **{k: v for k, v in options.items() if k in method_keys})  # type: ignore[type-var]
    return method, trainer, fit
