"""Checks of configuration values: each raises ``ValueError`` naming the bad knob and the
allowed values, before any work starts."""

from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import Any

from .schema import (
    ANALYSIS_GAMES,
    ANALYSIS_SCORES,
    BENCHMARK_LOGGERS,
    BENCHMARK_METHODS,
    BLUR_PADDINGS,
    CHANNEL_BASELINES,
    CHANNEL_KINDS,
    DATASETS,
    EP_OBJECT_IOUS,
    LAYER_KINDS,
    LAYER_LAYOUTS,
    LOGGERS,
    METHOD_KINDS,
    MP_SCORES,
    OPTIMIZERS,
    PERTURBATIONS,
    PRECISIONS,
    REWARD_NAMES,
    SANITY_MODES,
    SMOOTHINGS,
    SPACE_BASELINES,
    TASKS,
    VARIANTS,
    WARM_STARTS,
    AnalysisConfig,
    BenchmarkConfig,
    DataConfig,
    InversionConfig,
    LoggerConfig,
    MeaningfulConfig,
    MethodConfig,
)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}; got {value!r}")


def _positive(name: str, value: Any, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        what = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name} must be {what}; got {value!r}")


#: Values of ``trainer.compile`` / ``compile=`` and of ``trainer.channels_last``.
COMPILE_CHOICES = (True, False, "auto")


def validate_run_options(precision: str, compile: Any, channels_last: Any = "auto") -> None:
    """Raise ``ValueError`` for an unknown precision, compile or channels_last setting."""
    if str(precision) not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}; got {precision!r}")
    for name, value in (("compile", compile), ("channels_last", channels_last)):
        if not (isinstance(value, bool) or value == "auto"):
            raise ValueError(f"{name} must be one of {list(COMPILE_CHOICES)}; got {value!r}")


def validate_processes(num_nodes: Any, collective_timeout: Any) -> None:
    """Raise ``ValueError`` for a node count or collective timeout that is not a positive
    integer."""
    for name, value in (("num_nodes", num_nodes), ("collective_timeout", collective_timeout)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"trainer.{name} must be a positive integer; got {value!r}")


def validate_method(cfg: MethodConfig, reward_is_callable: bool = False) -> None:
    """Raise ``ValueError`` naming the first bad knob, before any work starts."""
    _choice("kind", cfg.kind, METHOD_KINDS)
    _check_areas(cfg)
    _check_layer(cfg)
    _check_start(cfg)
    _choice("variant", cfg.variant, VARIANTS)
    _choice("perturbation", cfg.perturbation, PERTURBATIONS)
    _choice("blur_padding", cfg.blur_padding, BLUR_PADDINGS)
    _choice("smoothing", cfg.smoothing, SMOOTHINGS)
    _choice("optimizer", cfg.optimizer, OPTIMIZERS)
    if not reward_is_callable:
        _choice("reward", cfg.reward, REWARD_NAMES)
    _check_numbers(cfg)


def _check_areas(cfg: MethodConfig) -> None:
    """Fractions in (0, 1), or (channel kinds) all channel counts ≥ 1."""
    areas = list(cfg.areas) if not isinstance(cfg.areas, (int, float)) else [cfg.areas]
    if not areas:
        raise ValueError("areas must be a non-empty list of fractions in (0, 1); got []")
    for a in areas:
        if cfg.kind in CHANNEL_KINDS and _is_count(a):
            continue  # a number of channels (checked against the layer's width later)
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 < a < 1:
            also = " or channel counts ≥ 1" if cfg.kind in CHANNEL_KINDS else ""
            raise ValueError(
                f"areas must be fractions in the open interval (0, 1){also}; got {a!r}"
            )
    if cfg.kind in CHANNEL_KINDS and 0 < sum(_is_count(a) for a in areas) < len(areas):
        raise ValueError(f"areas must be all fractions or all channel counts; got {areas}")


def _check_layer(cfg: MethodConfig) -> None:
    """The layer knobs: a module name only for the layer kinds, baselines, grid."""
    if cfg.layer is not None and (not isinstance(cfg.layer, str) or not cfg.layer):
        raise ValueError(f"layer must be a module name or None; got {cfg.layer!r}")
    if cfg.layer is not None and cfg.kind not in LAYER_KINDS:
        raise ValueError(
            f"layer={cfg.layer!r} is set but kind is {cfg.kind!r}, which explains the input; "
            f"choose a layer kind: {list(LAYER_KINDS)} (e.g. method=channel)"
        )
    _choice("channel_baseline", cfg.channel_baseline, CHANNEL_BASELINES)
    _choice("space_baseline", cfg.space_baseline, SPACE_BASELINES)
    if cfg.layer_step is not None:
        _positive("layer_step", cfg.layer_step, integer=True)
    if cfg.layer_sigma is not None:
        _positive("layer_sigma", cfg.layer_sigma)
    _choice("layer_layout", cfg.layer_layout, LAYER_LAYOUTS)
    grid = cfg.layer_grid
    if grid is not None and (
        len(grid) != 2 or any(isinstance(g, bool) or not isinstance(g, int) or g < 1 for g in grid)
    ):
        raise ValueError(f"layer_grid must be [H, W], two positive integers; got {list(grid)}")
    extra = cfg.layer_extra_tokens
    if extra is not None and (isinstance(extra, bool) or not isinstance(extra, int) or extra < 0):
        raise ValueError(f"layer_extra_tokens must be an integer ≥ 0; got {extra!r}")


def _check_start(cfg: MethodConfig) -> None:
    """Where masks start: a uniform ``init`` or a warm start (and its layer's name)."""
    _choice("warm_start", cfg.warm_start, WARM_STARTS)
    layer = cfg.warm_start_layer
    if layer is not None and (not isinstance(layer, str) or not layer):
        raise ValueError(f"warm_start_layer must be a module name or None; got {layer!r}")


def _check_numbers(cfg: MethodConfig) -> None:
    """The numeric knobs of the mask, the pyramid and the optimiser."""
    _positive("step", cfg.step, integer=True)
    _positive("sigma", cfg.sigma)
    _positive("coldness", cfg.coldness)
    _positive("max_iter", cfg.max_iter, integer=True)
    _positive("lr", cfg.lr)
    _positive("lambda_growth", cfg.lambda_growth)
    if (
        isinstance(cfg.num_levels, bool)
        or not isinstance(cfg.num_levels, int)
        or cfg.num_levels < 2
    ):
        raise ValueError(f"num_levels must be an integer ≥ 2; got {cfg.num_levels!r}")
    if cfg.perturbation == "blur":
        _positive("max_blur", cfg.max_blur)
    if not isinstance(cfg.lambda0, (int, float)) or cfg.lambda0 < 0 or math.isnan(cfg.lambda0):
        raise ValueError(f"lambda0 must be a number ≥ 0; got {cfg.lambda0!r}")
    final = cfg.lambda_final
    if final is not None and (
        isinstance(final, bool) or not isinstance(final, (int, float)) or not final > 0
    ):
        raise ValueError(f"lambda_final must be a number > 0 or null; got {final!r}")
    if final is not None and not cfg.lambda0 > 0:
        raise ValueError(
            f"lambda_final needs lambda0 > 0 (a geometric schedule); got {cfg.lambda0!r}"
        )
    if not 0 <= cfg.init <= 1:
        raise ValueError(f"init must be in [0, 1]; got {cfg.init!r}")
    margin = cfg.area_margin
    if margin is not None and (
        isinstance(margin, bool) or not isinstance(margin, int) or margin < 0
    ):
        raise ValueError(f"area_margin must be None or an integer ≥ 0; got {margin!r}")
    for name in ("momentum", "dampening"):
        value = getattr(cfg, name)
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1); got {value!r}")


def _is_count(a: Any) -> bool:
    """An area given as a number of channels: an integral value ≥ 1 (``3`` or ``3.0``)."""
    return (
        not isinstance(a, bool) and isinstance(a, (int, float)) and a >= 1 and float(a).is_integer()
    )


def validate_inversion(cfg: InversionConfig) -> None:
    """Raise ``ValueError`` naming the first bad feature-inversion knob."""
    steps = cfg.invert_iter
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"inversion.invert_iter must be an integer ≥ 0; got {steps!r}")
    _positive("inversion.invert_lr", cfg.invert_lr)
    _positive("inversion.tv_beta", cfg.tv_beta)
    _positive("inversion.norm_alpha", cfg.norm_alpha)
    for name in ("tv_weight", "norm_weight"):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"inversion.{name} must be a number ≥ 0; got {value!r}")
    jitter = cfg.invert_jitter
    if isinstance(jitter, bool) or not isinstance(jitter, int) or jitter < 0:
        raise ValueError(f"inversion.invert_jitter must be an integer ≥ 0; got {jitter!r}")


def validate_data(cfg: DataConfig) -> None:
    """The sizes and counts of ``data.*`` (sources, targets and folders are checked when the
    images are opened)."""
    if cfg.size is not None:
        _positive("data.size", cfg.size, integer=True)
    _positive("data.batch_size", cfg.batch_size, integer=True)
    _positive("data.num_images", cfg.num_images, integer=True)


def validate_logger(cfg: LoggerConfig) -> None:
    """Raise ``ValueError`` naming the first bad logging/observability knob."""
    _choice("logger.name", cfg.name, LOGGERS)
    every = cfg.mask_every_n_steps
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ValueError(
            f"logger.mask_every_n_steps must be an integer ≥ 0 (0: off); got {every!r}"
        )
    tol = cfg.early_stop_tol
    if tol is not None and (
        isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol > 0
    ):
        raise ValueError(f"logger.early_stop_tol must be null or a positive number; got {tol!r}")
    _positive("logger.early_stop_window", cfg.early_stop_window, integer=True)


def validate_benchmark(cfg: BenchmarkConfig) -> None:
    """Raise ``ValueError`` naming the first bad benchmark knob, before any work starts.

    Method names are not resolved here (aliases such as ``ep`` belong to the evaluation
    package): the benchmark job does that before its first chunk.
    """
    _choice("task", cfg.task, TASKS)
    _choice("dataset", cfg.dataset, DATASETS)
    _choice("logger", cfg.logger, BENCHMARK_LOGGERS)
    _choice("sanity_mode", cfg.sanity_mode, SANITY_MODES)
    _choice("ep_object_iou", cfg.ep_object_iou, EP_OBJECT_IOUS)
    if not cfg.methods:
        raise ValueError(f"methods must name at least one of {list(BENCHMARK_METHODS)}")
    if cfg.rise_score not in (None, "softmax", "sigmoid"):
        raise ValueError(f"rise_score must be softmax, sigmoid or null; got {cfg.rise_score!r}")
    for name in ("chunk_size", "rise_masks", "curve_steps", "sanity_images"):
        _positive(name, getattr(cfg, name), integer=True)
    if cfg.max_iter is not None:
        _positive("max_iter", cfg.max_iter, integer=True)
    _positive("ep_batch_size", cfg.ep_batch_size, integer=True)
    if cfg.limit is not None and cfg.limit < 1:
        raise ValueError(f"limit must be a positive integer or null; got {cfg.limit!r}")
    if cfg.dataset in ("voc07", "coco14") and not cfg.root:
        raise ValueError(f"dataset={cfg.dataset} needs root=PATH (nothing is downloaded)")
    validate_meaningful_options(cfg.mp_options, "mp_options")


def validate_analysis(cfg: AnalysisConfig) -> None:
    """Raise ``ValueError`` naming the first bad ``analysis.*`` value and the allowed ones."""
    areas = cfg.areas if isinstance(cfg.areas, list) else [cfg.areas]
    for a in areas:
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 < a <= 1:
            raise ValueError(f"analysis.areas must be fractions in (0, 1]; got {a!r} in {areas}")
    if len(areas) < 2 or any(b <= a for a, b in zip(areas[:-1], areas[1:], strict=True)):
        raise ValueError(
            f"analysis.areas must be at least 2 increasing fractions in (0, 1]; got {areas}"
        )
    if cfg.score is not None:
        _choice("analysis.score", cfg.score, ANALYSIS_SCORES)
    _positive("analysis.preserve_fraction", cfg.preserve_fraction)
    _positive("analysis.delete_fraction", cfg.delete_fraction)
    games = list(cfg.games) if isinstance(cfg.games, list) else [cfg.games]
    if not games or any(g not in ANALYSIS_GAMES for g in games) or len(set(games)) < len(games):
        raise ValueError(
            f"analysis.games must be a list of distinct games of {list(ANALYSIS_GAMES)}; "
            f"got {cfg.games!r}"
        )
    _positive("analysis.max_objects", cfg.max_objects, integer=True)
    compare = cfg.compare_areas if isinstance(cfg.compare_areas, list) else [cfg.compare_areas]
    for a in compare:
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 < a <= 1:
            raise ValueError(
                f"analysis.compare_areas must be fractions in (0, 1]; got {a!r} in {compare}"
            )
    validate_meaningful_options(cfg.mp_options, "analysis.mp_options")


def _non_negative(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a number ≥ 0; got {value!r}")


def validate_meaningful_options(options: Any, name: str = "options") -> MeaningfulConfig:
    """The :class:`MeaningfulConfig` of ``options`` (a mapping of its fields), checked; an
    unknown field raises ``ValueError`` naming the valid ones."""
    if not isinstance(options, dict):
        raise ValueError(f"{name} must be a mapping of MeaningfulConfig fields; got {options!r}")
    valid = [f.name for f in fields(MeaningfulConfig)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown {name} field(s) {unknown}; valid: {valid}")
    cfg = replace(MeaningfulConfig(), **options)
    validate_meaningful(cfg)
    return cfg


def validate_meaningful(cfg: MeaningfulConfig) -> None:
    """Raise ``ValueError`` naming the first bad meaningful-perturbation knob."""
    _choice("score", cfg.score, MP_SCORES)
    _choice("blur_padding", cfg.blur_padding, BLUR_PADDINGS)
    coeffs = cfg.l1_coeffs
    if isinstance(coeffs, (str, bytes)) or not isinstance(coeffs, (list, tuple)) or not coeffs:
        raise ValueError(f"l1_coeffs must be a non-empty list of numbers ≥ 0; got {coeffs!r}")
    for value in coeffs:
        _non_negative("each of l1_coeffs", value)
    for name in ("tv_coeff", "blur_sigma"):
        _non_negative(name, getattr(cfg, name))
    for name in ("tv_beta", "lr"):
        _positive(name, getattr(cfg, name))
    for name in ("grid", "max_iter"):
        _positive(name, getattr(cfg, name), integer=True)
    if isinstance(cfg.jitter, bool) or not isinstance(cfg.jitter, int) or cfg.jitter < 0:
        raise ValueError(f"jitter must be an integer ≥ 0 (px); got {cfg.jitter!r}")
    init = cfg.init
    if isinstance(init, bool) or not isinstance(init, (int, float)) or not 0 <= init <= 1:
        raise ValueError(f"init must be a number in [0, 1]; got {init!r}")
