"""Typed configuration: every knob with its default and where the default comes from."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

VARIANTS = ("preserve", "delete", "dual")
PERTURBATIONS = ("blur", "fade")
BLUR_PADDINGS = ("reflect", "zeros")
SMOOTHINGS = ("maxconv", "gaussian")
OPTIMIZERS = ("sgd", "adam")
REWARD_NAMES = ("simple", "contrastive")
LOGGERS = ("wandb", "csv", "tensorboard", "none")
PRECISIONS = ("32-true", "32", "16-mixed", "bf16-mixed", "64-true")
#: What a run explains: input masks, channels or the spatial grid of a layer, feature
#: inversions, or channel attribution with activation diffing.
METHOD_KINDS = ("input", "channel", "layer-spatial", "invert", "diff")
#: Kinds that read a layer (``method.layer``) and kinds whose areas may be channel counts.
LAYER_KINDS = ("channel", "layer-spatial", "invert", "diff")
CHANNEL_KINDS = ("channel", "diff")
CHANNEL_BASELINES = ("zero", "mean")
SPACE_BASELINES = ("zero", "mean", "blur")


@dataclass
class MethodConfig:
    """The extremal-perturbation optimisation (defaults: the reference implementation's)."""

    areas: list[float] = field(default_factory=lambda: [0.1])  # reference default area
    variant: str = "preserve"  # preserve | delete | dual (paper §3)
    reward: str = "simple"  # simple | contrastive (reference reward functions)
    perturbation: str = "blur"  # blur | fade (reference perturbation types)
    num_levels: int = 8  # pyramid levels L: reference value
    max_blur: float = 20.0  # σ of the most blurred level, px: reference value
    blur_padding: str = "reflect"  # reflect (no dark borders) | zeros (the reference's)
    smoothing: str = "maxconv"  # maxconv (paper) | gaussian (the paper's alternative)
    step: int = 7  # mask parameter grid stride, px: reference value
    sigma: float = 21.0  # mask smoothing σ, px: reference value
    area_margin: int | None = None  # px of mask beyond the image that the area ranks; None = ⌈σ⌉
    coldness: float = 20.0  # smooth-max β (inf = hard max): reference value
    jitter: bool = True  # flip the perturbed batch on even steps: reference behaviour
    max_iter: int = 800  # optimisation steps: reference value
    optimizer: str = "sgd"  # sgd (reference) | adam
    lr: float = 0.01  # learning rate: reference value
    momentum: float = 0.9  # SGD momentum: reference value
    dampening: float = 0.9  # SGD dampening: reference uses dampening = momentum
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # torch's default
    init: float = 1.0  # initial parameter value: reference initialises to 1
    lambda0: float = 300.0  # λ₀, area-loss weight at step 0: reference value
    lambda_growth: float = 1.0035  # λ_t = λ₀·g^t: reference growth (≈16× by step 800)
    # --- intermediate layers (README, "Intermediate layers") ---
    kind: str = "input"  # input | channel | layer-spatial | invert | diff
    layer: str | None = None  # module name (named_modules()); None: the last spatial feature map
    # Channels outside the mask go to: zero (feature absent) | mean (the channel's spatial mean)
    channel_baseline: str = "zero"
    # Layer cells outside the mask go to: zero | mean | blur (σ = max_blur in input px)
    space_baseline: str = "zero"
    layer_step: int | None = None  # mask grid stride, layer cells; None: step / downsampling
    layer_sigma: float | None = None  # mask σ, layer cells; None: sigma / downsampling


@dataclass
class InversionConfig:
    """Feature inversion (Mahendran & Vedaldi, CVPR 2015) for method.kind=invert|channel|diff."""

    invert_iter: int = 200  # Adam steps on the pixels (0: no inversion figures for channel)
    invert_lr: float = 0.05  # Adam learning rate on pixels in [0, 1]
    tv_weight: float = 1.0  # weight of the TV^β prior
    tv_beta: float = 2.0  # β of TV^β: M&V's value for deep layers
    norm_weight: float = 0.05  # weight of the α-norm prior
    norm_alpha: float = 6.0  # α of the α-norm: M&V's value
    invert_jitter: int = 0  # random translation of ±n px per step (M&V 2016); 0: off


@dataclass
class ModelConfig:
    """Which classifier to explain."""

    name: str = "demo"  # demo | a torchvision classifier name | path | package.module:attr
    weights: str = "DEFAULT"  # torchvision weights enum member (e.g. IMAGENET1K_V2)
    checkpoint: str | None = None  # local weights file for a torchvision architecture
    normalize: bool = True  # wrap torchvision models so they take images in [0, 1]


@dataclass
class DataConfig:
    """Which images, at what size, explained for which classes."""

    # demo | synthetic | voc07 | coco14 (a local root, see `root`) | a folder | a glob
    source: str = "demo"
    size: int | None = None  # shorter side in px; None = the model's size (demo 128, else 224)
    crop: bool = True  # centre-crop to size×size so any photos batch together
    targets: Any = "top1"  # top1 (predicted class) | a class id | a list of class ids
    batch_size: int = 8  # images optimised together in one Lightning fit
    num_images: int = 64  # data=synthetic: how many images
    synthetic_seed: int = 1000  # data=synthetic: image stream (the demo CNN trained on others)
    multi_object: bool = False  # data=synthetic: 2–3 objects per image, all of them labels
    # Folder of <image id>.png object masks for the quality/* scores (demo: built in).
    ground_truth: str | None = None
    root: str | None = None  # voc07: holds VOCdevkit/VOC2007; coco14: val2014/ + annotations/
    image_set: str = "test"  # voc07: ImageSets/Main list (test | trainval | …)
    ann_file: str | None = None  # coco14: instances JSON (default root/annotations/…val2014)
    image_dir: str | None = None  # coco14: image folder (default root/val2014)


@dataclass
class TrainerConfig:
    """What Lightning's Trainer gets."""

    accelerator: str = "auto"  # Lightning's choice: GPU when there is one
    devices: Any = 1  # number of devices (or "auto")
    strategy: str = "auto"  # Lightning strategy
    precision: str = "32-true"  # 32-true | 16-mixed | bf16-mixed (classifier only)
    progress: bool = True  # show a progress bar over optimisation steps
    # torch.compile the smooth max: true | false | auto (compile when the run is long enough
    # for the one-off compile time to pay off; same values as eager within float rounding).
    compile: Any = "auto"
    # Feed the classifier channels-last inputs: true | false | auto (when it has a Conv2d and
    # gives the same scores that way; ~20 % faster convolutions on CPUs, also on GPUs).
    channels_last: Any = "auto"
    log_every_n_steps: int = 10  # logger write interval (each write is a host sync)
    seed: int = 0  # seed_everything value


@dataclass
class LoggerConfig:
    """Experiment logging (W&B offline unless you are logged in)."""

    name: str = "wandb"  # wandb | csv | tensorboard | none
    project: str = "lightning-extremal"  # W&B project
    offline: bool | None = None  # None: offline when no W&B login is found
    group: str | None = None  # W&B group of the job's runs; None: the output folder's name
    mask_every_n_steps: int = 50  # mask/perturbed-input frames every n steps (0: off); 17 for 800
    final_table: bool = True  # final masks as a W&B table (no W&B: PNGs + CSV)
    # Stop once every mask's mean |Δm| per step stays < tol for early_stop_window steps;
    # None: off, the reference always runs max_iter steps.
    early_stop_tol: float | None = None
    early_stop_window: int = 50  # steps the change must stay below early_stop_tol


@dataclass
class RunConfig:
    """Everything `lightning-extremal run` needs."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    inversion: InversionConfig = field(default_factory=InversionConfig)
    output_dir: str | None = None  # None: outputs/run-<timestamp>


def method_fields() -> list[str]:
    return [f.name for f in fields(MethodConfig)]


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


def validate_method(cfg: MethodConfig, reward_is_callable: bool = False) -> None:
    """Raise ``ValueError`` naming the first bad knob, before any work starts."""
    _choice("kind", cfg.kind, METHOD_KINDS)
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
    _choice("variant", cfg.variant, VARIANTS)
    _choice("perturbation", cfg.perturbation, PERTURBATIONS)
    _choice("blur_padding", cfg.blur_padding, BLUR_PADDINGS)
    _choice("smoothing", cfg.smoothing, SMOOTHINGS)
    _choice("optimizer", cfg.optimizer, OPTIMIZERS)
    if not reward_is_callable:
        _choice("reward", cfg.reward, REWARD_NAMES)
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


# --- composing a RunConfig from YAML files and key=value overrides ---------------------------

#: ``GROUP=value`` with a scalar value sets this field when no ``configs/GROUP/value.yaml`` exists.
#: (``method=KIND`` likewise sets ``method.kind`` when KIND is one of :data:`METHOD_KINDS`.)
GROUP_PRIMARY = {"model": "name", "data": "source", "logger": "name"}
#: Groups that can be set from ``configs/GROUP/NAME.yaml`` (``preset`` may touch any group).
GROUPS = ("model", "data", "method", "trainer", "logger", "preset")


def configs_dir():
    """The packaged ``configs/`` folder (a Traversable; works installed or from a checkout)."""
    from importlib.resources import files

    return files("lightning_extremal.configs")


def _leaf_aliases() -> dict[str, str]:
    """Field names that appear in exactly one group, usable without the group prefix."""
    seen: dict[str, list[str]] = {}
    for group in fields(RunConfig):
        if group.name == "output_dir":
            continue
        for leaf in fields(group.default_factory()):  # type: ignore[misc]
            seen.setdefault(leaf.name, []).append(f"{group.name}.{leaf.name}")
    return {name: paths[0] for name, paths in seen.items() if len(paths) == 1}


def valid_keys() -> list[str]:
    """Every dotted key of :class:`RunConfig` (for error messages)."""
    keys = ["output_dir"]
    for group in fields(RunConfig):
        if group.name != "output_dir":
            keys += [f"{group.name}.{f.name}" for f in fields(group.default_factory())]  # type: ignore[misc]
    return keys


def _group_file(group: str, name: str):
    path = configs_dir() / group / f"{name}.yaml"
    return path if path.is_file() else None


def _available(group: str) -> list[str]:
    folder = configs_dir() / group
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def compose(args: list[str]) -> RunConfig:
    """Merge dataclass defaults, ``config=NAME|PATH``, ``GROUP=NAME`` files and ``key=value``.

    Files are merged first (in the order given), then the ``key=value`` overrides, so an
    explicit value always wins over a preset. Unknown or mistyped keys raise ``ValueError``
    naming the valid keys.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    base = OmegaConf.structured(RunConfig)
    aliases = _leaf_aliases()
    layers, overrides = [], []
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise ValueError(f"arguments must look like key=value; got {arg!r}")
        key = key.strip()
        if key == "config":
            path = Path(value)
            if not path.is_file():
                named = configs_dir() / f"{value}.yaml"
                if not named.is_file():
                    raise ValueError(
                        f"config {value!r} is neither a file nor one of {_available('.')}"
                    )
                layers.append(OmegaConf.create(named.read_text()))
            else:
                layers.append(OmegaConf.load(path))
        elif key in GROUPS:
            file = _group_file(key, value)
            if file is not None:
                data = OmegaConf.create(file.read_text())
                layers.append(data if key == "preset" else OmegaConf.create({key: data}))
            elif key in GROUP_PRIMARY:
                overrides.append(OmegaConf.from_dotlist([f"{key}.{GROUP_PRIMARY[key]}={value}"]))
            elif key == "method" and value in METHOD_KINDS:
                # method=channel: no configs/method/channel.yaml, so it names the kind.
                layers.append(OmegaConf.create({"method": {"kind": value}}))
            else:
                kinds = f"; or a method kind: {list(METHOD_KINDS)}" if key == "method" else ""
                raise ValueError(
                    f"{key}={value!r}: no such {key} config; available: {_available(key)}{kinds}"
                )
        else:
            dotted = aliases.get(key, key)
            if dotted not in valid_keys():
                raise ValueError(
                    f"unknown config key {key!r}; valid keys: {', '.join(valid_keys())}"
                )
            overrides.append(OmegaConf.from_dotlist([f"{dotted}={value}"]))
    try:
        merged = OmegaConf.merge(base, *layers, *overrides)
    except OmegaConfBaseException as error:
        raise ValueError(
            f"bad configuration: {error}; valid keys: {', '.join(valid_keys())}"
        ) from error
    return OmegaConf.to_object(merged)  # type: ignore[return-value]
