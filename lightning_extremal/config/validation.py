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
    TrainerConfig,
)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}; got {value!r}")


def _is_number(value: Any) -> bool:
    """A finite int or float (not a bool, not NaN or ±inf)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _positive(name: str, value: Any, integer: bool = False) -> None:
    if integer:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    elif not _is_number(value) or not value > 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")


def _in_range(name: str, value: Any, low: float, high: float, high_open: bool = False) -> None:
    """``low ≤ value ≤ high`` (``< high`` with ``high_open``), a finite number."""
    if not _is_number(value) or not low <= value <= high or (high_open and value == high):
        interval = f"[{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number in {interval}; got {value!r}")


def _integer_at_least(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer ≥ {low}; got {value!r}")


#: Seeds Lightning's ``seed_everything`` takes (outside, it warns and seeds 0 instead).
MAX_SEED = 2**32 - 1
#: Largest λ the area loss can be weighted by at any step (float32's maximum is 3.4e38).
MAX_LAMBDA = 1e30


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
    """The numeric knobs of the mask, the pyramid and the optimiser: finite, and in the range
    the method can do."""
    _positive("step", cfg.step, integer=True)
    _positive("sigma", cfg.sigma)
    if cfg.smoothing == "maxconv" and cfg.sigma < cfg.step / 2:
        # Below step/2 the pixels between the grid's parameters get a weight < 0.19 (the mask
        # cannot cover them: 2 % reached for a 10 % area at σ = 0.5, step 7) and from
        # σ ≈ 0.14 px none at all (no gradient: the model looks unexplainable).
        raise ValueError(
            f"sigma must be ≥ step/2 = {cfg.step / 2:g} px with smoothing=maxconv (step="
            f"{cfg.step}); got {cfg.sigma!r}: lower step or raise sigma"
        )
    _positive("coldness", cfg.coldness)  # finite: an infinite one stops every gradient
    _positive("max_iter", cfg.max_iter, integer=True)
    _positive("lr", cfg.lr)
    _integer_at_least("num_levels", cfg.num_levels, 2)
    _positive("max_blur", cfg.max_blur)
    _check_schedule(cfg)
    _in_range("init", cfg.init, 0, 1)
    margin = cfg.area_margin
    if margin is not None and (
        isinstance(margin, bool) or not isinstance(margin, int) or margin < 0
    ):
        raise ValueError(f"area_margin must be None or an integer ≥ 0; got {margin!r}")
    for name in ("momentum", "dampening"):
        _in_range(name, getattr(cfg, name), 0, 1, high_open=True)
    betas = cfg.adam_betas
    if (
        not isinstance(betas, (list, tuple))
        or len(betas) != 2
        or not all(_is_number(b) and 0 <= b < 1 for b in betas)
    ):
        raise ValueError(f"adam_betas must be two numbers in [0, 1); got {betas!r}")


def _check_schedule(cfg: MethodConfig) -> None:
    """λ₀, its growth and its final value: finite, and λ finite at every step."""
    if not _is_number(cfg.lambda0) or cfg.lambda0 < 0 or cfg.lambda0 > MAX_LAMBDA:
        raise ValueError(f"lambda0 must be a number in [0, {MAX_LAMBDA:g}]; got {cfg.lambda0!r}")
    _positive("lambda_growth", cfg.lambda_growth)
    final = cfg.lambda_final
    if final is not None and (not _is_number(final) or not 0 < final <= MAX_LAMBDA):
        raise ValueError(
            f"lambda_final must be a number in (0, {MAX_LAMBDA:g}] or null; got {final!r}"
        )
    if final is not None and not cfg.lambda0 > 0:
        raise ValueError(
            f"lambda_final needs lambda0 > 0 (a geometric schedule); got {cfg.lambda0!r}"
        )
    if final is None and cfg.lambda0 > 0:
        last = math.log(cfg.lambda0) + (cfg.max_iter - 1) * math.log(cfg.lambda_growth)
        if last > math.log(MAX_LAMBDA):
            raise ValueError(
                f"lambda_growth={cfg.lambda_growth!r} makes λ = lambda0·growth^t exceed "
                f"{MAX_LAMBDA:g} by step {cfg.max_iter - 1} (max_iter={cfg.max_iter}): "
                "lower lambda_growth or set lambda_final"
            )


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
        _non_negative(f"inversion.{name}", getattr(cfg, name))
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
    _integer_at_least("data.synthetic_seed", cfg.synthetic_seed, 0)


def validate_trainer(cfg: TrainerConfig) -> None:
    """The run options of ``trainer.*`` (devices, accelerator and strategy are Lightning's)."""
    validate_run_options(cfg.precision, cfg.compile, cfg.channels_last)
    validate_processes(cfg.num_nodes, cfg.collective_timeout)
    _positive("trainer.log_every_n_steps", cfg.log_every_n_steps, integer=True)
    validate_seed("trainer.seed", cfg.seed)
    if not isinstance(cfg.memory_check, bool):
        raise ValueError(f"trainer.memory_check must be true or false; got {cfg.memory_check!r}")


def validate_seed(name: str, value: Any) -> None:
    """A seed ``seed_everything`` takes as given: an integer in [0, 2³² − 1]."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ValueError(f"{name} must be an integer in [0, {MAX_SEED}]; got {value!r}")


def validate_logger(cfg: LoggerConfig) -> None:
    """Raise ``ValueError`` naming the first bad logging/observability knob."""
    _choice("logger.name", cfg.name, LOGGERS)
    every = cfg.mask_every_n_steps
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ValueError(
            f"logger.mask_every_n_steps must be an integer ≥ 0 (0: off); got {every!r}"
        )
    tol = cfg.early_stop_tol
    if tol is not None and (not _is_number(tol) or not tol > 0):
        raise ValueError(f"logger.early_stop_tol must be null or a finite number > 0; got {tol!r}")
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
    for name in ("limit", "threads"):
        value = getattr(cfg, name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"{name} must be a positive integer or null; got {value!r}")
    for name in ("synthetic_single", "synthetic_multi"):
        _integer_at_least(name, getattr(cfg, name), 0)
    _positive("synthetic_size", cfg.synthetic_size, integer=True)
    validate_seed("seed", cfg.seed)
    _integer_at_least("synthetic_seed", cfg.synthetic_seed, 0)
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
    if not _is_number(value) or not value >= 0:
        raise ValueError(f"{name} must be a finite number ≥ 0; got {value!r}")


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
    _in_range("init", cfg.init, 0, 1)
