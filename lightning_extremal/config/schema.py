"""Typed configuration: every knob with its default and where the default comes from."""

from __future__ import annotations

from dataclasses import dataclass, field
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
#: Where input masks start (MethodConfig.warm_start).
WARM_STARTS = ("none", "grad_cam", "auto")
#: What a layer's activation dimensions mean (ops/layer_layout.py; auto: detected where only
#: one reading fits).
LAYER_LAYOUTS = ("auto", "nchw", "nhwc", "ntc")


CHANNEL_KINDS = ("channel", "diff")


CHANNEL_BASELINES = ("zero", "mean")


SPACE_BASELINES = ("zero", "mean", "blur")


@dataclass
class MethodConfig:
    """The extremal-perturbation optimisation.

    Defaults: the reference implementation's mask, perturbation and area constraint; the
    optimiser from the convergence study (benchmarks/RESULTS.md, "Convergence"): Adam,
    λ geometric from 30 to 5000 over 200 steps. ``preset=reference`` restores the
    reference's SGD schedule (800 steps, λ = 300·1.0035^t).
    """

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
    coldness: float = 20.0  # smooth-max β, finite (larger: harder max): reference value
    jitter: bool = True  # flip the perturbed batch on even steps: reference behaviour
    max_iter: int = 200  # optimisation steps (reference: 800)
    optimizer: str = "adam"  # adam | sgd (reference)
    lr: float = 0.05  # learning rate (reference, SGD: 0.01)
    momentum: float = 0.9  # SGD momentum: reference value
    dampening: float = 0.9  # SGD dampening: reference uses dampening = momentum
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # torch's default
    init: float = 1.0  # initial parameter value: reference initialises to 1
    lambda0: float = 30.0  # λ₀, area-loss weight at step 0 (reference: 300, which freezes
    # Adam's masks where the first steps put them, before the reward has placed them)
    lambda_growth: float = 1.0035  # λ_t = λ₀·g^t when lambda_final is None: reference growth
    # λ at the last step: λ grows geometrically from λ₀ to it over max_iter steps, whatever
    # max_iter is (lambda_growth unused); None: λ₀·lambda_growth^t, the reference's schedule
    # (which ends at 300·1.0035^799 ≈ 4.9e3).
    lambda_final: float | None = 5000.0
    # Input masks start at: none (every parameter = init) | grad_cam (the top-a region of the
    # pair's Grad-CAM map, fitted; benchmarks/warm_start.py) | auto (grad_cam where the model
    # has a layer with a spatial grid, else none). Layer kinds ignore it.
    warm_start: str = "auto"
    warm_start_layer: str | None = None  # Grad-CAM's layer; None: the last spatial map
    # --- intermediate layers (docs/layers.md) ---
    kind: str = "input"  # input | channel | layer-spatial | invert | diff
    layer: str | None = None  # module name (named_modules()); None: the last spatial feature map
    # Channels outside the mask go to: zero (feature absent) | mean (the channel's spatial mean)
    channel_baseline: str = "zero"
    # Layer cells outside the mask go to: zero | mean | blur (σ = max_blur in input px)
    space_baseline: str = "zero"
    layer_step: int | None = None  # mask grid stride, layer cells; None: step / downsampling
    layer_sigma: float | None = None  # mask σ, layer cells; None: sigma / downsampling
    # What the activation's dimensions mean: auto | nchw (CNNs) | nhwc (Swin, N×H×W×C) |
    # ntc (ViT tokens, N×T×C: layer_extra_tokens leading tokens, then a layer_grid grid)
    layer_layout: str = "auto"
    layer_grid: list[int] | None = None  # [H, W] of a token grid; None: from model / tokens
    layer_extra_tokens: int | None = None  # leading non-grid tokens (ViT: 1, the class token)


#: What the meaningful-perturbation objective reads from the classifier (MeaningfulConfig.score).
MP_SCORES = ("softmax", "logit")


@dataclass
class MeaningfulConfig:
    """Meaningful perturbations (Fong & Vedaldi, ICCV 2017), the comparison method: a deletion
    mask found by ``min λ₁‖1 − m‖₁ + λ₂·TV_β(m) + f_c(Φ(x(· − τ); m))`` — penalties where
    extremal perturbations set the area directly. Defaults: the paper's where it states them.
    """

    # λ₁, per pixel (the paper's ‖1 − m‖₁ is a sum over the image's pixels): paper value 1e-4.
    # Several values give one mask each (rows of the result, like extremal areas).
    l1_coeffs: list[float] = field(default_factory=lambda: [1e-4])
    tv_coeff: float = 1e-2  # λ₂, weight of TV_β(m) (summed over pixels): paper value
    tv_beta: float = 3.0  # β of TV_β: paper value
    grid: int = 28  # side of the coarse mask, upsampled bilinearly to the image: paper's 28×28
    # σ₀ of the blurred copy that m blends with, px: paper value (at 224 px). The paper's blur
    # varies σ with m; one blurred copy is the common reading (our choice).
    blur_sigma: float = 10.0
    blur_padding: str = "reflect"  # reflect | zeros: as method.blur_padding (our choice)
    max_iter: int = 500  # Adam steps: paper value
    lr: float = 0.1  # Adam learning rate: paper value
    init: float = 1.0  # initial coarse mask (1: nothing deleted): our choice
    # Random translation τ of the input, up to ±jitter px per step (the paper's jitter against
    # adversarial masks; the 4 px are our choice); 0: off. The paper's mask noise is not used.
    jitter: int = 4
    score: str = "softmax"  # f_c: softmax (the paper: the class probability) | logit


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

    # demo | efficientnet_lite0 (the real extra) | a torchvision classifier name | path |
    # package.module:attr
    name: str = "demo"
    weights: str = "DEFAULT"  # torchvision weights enum member (e.g. IMAGENET1K_V2)
    checkpoint: str | None = None  # local weights file for a torchvision architecture
    normalize: bool = True  # wrap torchvision models so they take images in [0, 1]


@dataclass
class DataConfig:
    """Which images, at what size, explained for which classes."""

    # demo | synthetic | photos (sample photos in wheels, the real extra) | voc07 | coco14 (a
    # local root, see `root`) | a folder | a glob
    source: str = "demo"
    size: int | None = None  # shorter side in px; None = the model's size (demo 128, else 224)
    crop: bool = True  # centre-crop to size×size so any photos batch together
    # top1 (predicted class) | labels (the dataset's own: demo, synthetic, photos, VOC, COCO) |
    # a class id | a list of class ids
    targets: Any = "top1"
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
    devices: Any = 1  # number of devices (or "auto"); per node, as torchrun's --nproc-per-node
    num_nodes: int = 1  # machines of a multi-node job (torchrun --nnodes, SLURM nodes)
    strategy: str = "auto"  # Lightning strategy (auto under torchrun/srun: ddp)
    # Seconds a rank waits in a collective (e.g. for a rank that died) before failing, instead
    # of Lightning's 30 minutes (DDP's process-group timeout).
    collective_timeout: int = 600
    precision: str = "32-true"  # 32-true | 16-mixed | bf16-mixed (classifier only)
    progress: bool = True  # show a progress bar over optimisation steps
    # torch.compile the smooth max: true | false | auto (compile when the run is long enough
    # for the one-off compile time to pay off; same values as eager within float rounding).
    compile: Any = "auto"
    # Feed the classifier channels-last inputs: true | false | auto (when it has a Conv2d and
    # gives the same scores that way; faster convolutions, benchmarks/RESULTS.md).
    channels_last: Any = "auto"
    log_every_n_steps: int = 10  # logger write interval (each write is a host sync)
    # Estimate a chunk's peak memory before its first step and refuse one that cannot fit
    # (the message says what to lower); false: try anyway.
    memory_check: bool = True
    seed: int = 0  # seed_everything value
    # Deterministic algorithms only (Lightning's Trainer(deterministic=)): true | warn (warn
    # where an op has none) | null (torch's setting as it is).
    deterministic: Any = None


@dataclass
class LoggerConfig:
    """Experiment logging (W&B offline unless you are logged in)."""

    # W&B settings: a key given here (CLI, YAML) beats the W&B environment variable of your
    # shell ($WANDB_PROJECT, $WANDB_ENTITY, $WANDB_RUN_GROUP, $WANDB_JOB_TYPE, $WANDB_MODE),
    # which beats the default after "None:". Runs are written under $WANDB_DIR, else the
    # output folder; $WANDB_TAGS are added to the tags.
    name: str = "wandb"  # wandb | csv | tensorboard | none
    project: str | None = None  # W&B project; None: $WANDB_PROJECT, else "lightning-extremal"
    entity: str | None = None  # W&B entity; None: $WANDB_ENTITY, else your default entity
    offline: bool | None = None  # None: $WANDB_MODE, else offline when no W&B login is found
    group: str | None = None  # W&B group; None: $WANDB_RUN_GROUP, else the output folder's name
    job_type: str | None = None  # None: $WANDB_JOB_TYPE, else "run" ("sweep-trial" in sweeps)
    tags: list[str] | None = None  # extra W&B tags (kind, variant and model are always added)
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


#: What the analyses score (``analysis.score``): ``prob`` the softmax probability of the
#: target; ``reward`` the method's reward (``simple``: the target's logit).
ANALYSIS_SCORES = ("prob", "reward")
#: The games whose curves ``analyze area-curve`` draws (``analysis.games``).
ANALYSIS_GAMES = ("preserve", "delete")


@dataclass
class AnalysisConfig:
    """The paper's analyses (`lightning-extremal analyze`, docs/analyses.md)."""

    # The area grid of the curves (areas= also sets it): 8 log-spaced from 0.01 to 0.5, the
    # range of the paper's area plots; one batched fit per game optimises all of them.
    areas: list[float] = field(
        default_factory=lambda: [0.01, 0.0175, 0.0306, 0.0535, 0.0935, 0.1635, 0.2859, 0.5]
    )
    # prob (softmax probability of the target) | reward (the method's reward, e.g. the
    # logit); None: prob for area-curve (a ratio of probabilities is always defined), reward
    # for objects (logits add up where evidence adds up; probabilities saturate).
    score: str | None = None
    # Sufficient area a*: the smallest area whose preserved score reaches this fraction of
    # the full image's score (1.0: the mask alone scores as much as the whole image).
    preserve_fraction: float = 1.0
    # Necessary area: the smallest deleted area that leaves at most this fraction of the
    # full image's score (0.5: deleting it halves the score).
    delete_fraction: float = 0.5
    # area-curve: the games whose curves are drawn (one batched fit each over all the areas)
    games: list[str] = field(default_factory=lambda: ["preserve", "delete"])
    # a*: log-linear between the two grid areas around the crossing; false: the first grid
    # area that reaches the level.
    interpolate: bool = True
    max_objects: int = 4  # objects: the N largest objects of an image (each, each pair, all)
    # compare: the areas extremal perturbations are asked for, beside meaningful perturbations
    compare_areas: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.2])
    # compare: meaningful perturbations' settings (MeaningfulConfig fields); l1_coeffs: two
    # decades around the paper's λ₁ = 1e-4, to show the deleted area following the penalty.
    mp_options: dict[str, Any] = field(default_factory=lambda: {"l1_coeffs": [1e-5, 1e-4, 1e-3]})


#: What ``lightning-extremal benchmark`` measures, on which dataset, logged where.
TASKS = ("pointing", "faithfulness")


DATASETS = ("synthetic", "photos", "voc07", "coco14")


BENCHMARK_LOGGERS = ("wandb", "none")


#: Modes of the benchmark's model-randomisation check (Adebayo et al.).
SANITY_MODES = ("full", "cascading")
EP_OBJECT_IOUS = ("interpolated", "optimised", "summed")


#: The benchmark's methods, in the table's order. Spelled out here because config imports
#: nothing from the project; tests/test_benchmark_config.py checks it equals
#: ``list(lightning_extremal.evaluation.baselines.METHODS)``.
BENCHMARK_METHODS = (
    "center",
    "gradient",
    "deconvnet",
    "guided_backprop",
    "mwp",
    "cmwp",
    "rise",
    "grad_cam",
    "extremal_perturbation",
    "extremal_perturbation_uniform",
    "meaningful_perturbation",
)
#: The benchmark's default methods: the paper's pointing table, plus extremal perturbations from
#: the uniform start beside the default's Grad-CAM warm start (what the optimisation adds).
#: Meaningful perturbations are not in that table and cost 500 steps a pair: name them in
#: ``methods`` to add them.
TABLE_METHODS = tuple(m for m in BENCHMARK_METHODS if m != "meaningful_perturbation")


@dataclass
class BenchmarkConfig:
    """Every knob of ``lightning-extremal benchmark`` (defaults: the paper's benchmark)."""

    task: str = "pointing"  # pointing | faithfulness (deletion/insertion AUC + sanity check)
    # synthetic | photos (sample photos in wheels, the real extra) | voc07 (VOC 2007 test) |
    # coco14 (COCO 2014 val)
    dataset: str = "synthetic"
    model: str = "demo"  # demo | a torchvision name | a model file | package.module:attr
    methods: list[str] = field(default_factory=lambda: list(TABLE_METHODS))  # the paper's table
    root: str | None = None  # VOC: folder holding VOCdevkit/; COCO: holding val2014/, annotations/
    ann_file: str | None = None  # COCO: None = ROOT/annotations/instances_val2014.json
    image_dir: str | None = None  # COCO: None = ROOT/val2014
    diff_list: str | None = None  # EBP's Diff flags (TorchRay's file format); None = the rule
    limit: int | None = None  # only the first N images
    chunk_size: int = 8  # images per chunk (one result file per method and chunk)
    output_dir: str | None = None  # None = outputs/benchmark/<task>-<dataset>-<model>
    logger: str = "wandb"  # wandb (offline unless WANDB_MODE says otherwise) | none
    seed: int = 0  # seed of RISE's masks and of the optimisation
    threads: int | None = None  # torch intra-op threads; None = torch's default
    # Extremal perturbations (the method's defaults; ep_options for others).
    max_iter: int | None = None  # optimisation steps; None = the method's default
    areas: list[float] | None = None  # None = VOC/synthetic [0.025, 0.05, 0.1, 0.2], COCO [...]
    reward: str = "simple"  # simple (reference benchmark) | contrastive
    ep_batch_size: int = 2  # pairs per Lightning fit (small batches are faster on a CPU)
    ep_options: dict[str, Any] = field(default_factory=dict)  # other MethodConfig fields
    # Meaningful perturbations: MeaningfulConfig fields, e.g. {max_iter: 300, l1_coeffs: [1e-4]}
    mp_options: dict[str, Any] = field(default_factory=dict)
    # EP's IoU with the object at its own area: interpolated (between the masks of the areas
    # bracketing the object's) | optimised (one more run per pair at the object's area, opt-in:
    # it costs as much again) | summed (top pixels of the summed pointing map, before 2026-12)
    ep_object_iou: str = "interpolated"
    # Baselines.
    rise_masks: int = 8000  # RISE masks: TorchRay's benchmark value
    rise_score: str | None = None  # softmax | sigmoid; None = sigmoid on VOC/COCO, else softmax
    grad_cam_layer: str | None = None  # None = automatic (see baselines.resolve_layers)
    mwp_layer: str | None = None  # None = automatic (VGG16 pool4, ResNet50 layer3)
    contrast_layer: str | None = None  # None = automatic (VGG16 relu7, ResNet50 avgpool)
    # Synthetic set.
    synthetic_single: int = 90  # single-object images
    synthetic_multi: int = 45  # multi-object images (after the single-object ones)
    synthetic_size: int = 128  # rendered side, px: the demo classifier's input size
    synthetic_seed: int = 3  # stream not used to train, test or pick the demo images
    # Faithfulness.
    curve_steps: int = 50  # K steps of the deletion/insertion curves
    sanity_images: int = 8  # pairs of the randomisation check (the first ones)
    sanity_mode: str = "full"  # full | cascading (Adebayo et al.)
