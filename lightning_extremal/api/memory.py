"""Memory checked before work: an estimate of the peak memory of one optimisation of input
masks, refused with the fix when it exceeds what the machine has available."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..config import MethodConfig, TrainerConfig
from ..errors import UsageError
from ..ops.masks import compile_pays_off, compiled_smooth_max_available, maxconv_radius

#: Longer image side (px) of the two reduced sizes at which the classifier's activations are
#: measured; the bytes per pixel found between them are extrapolated to the real size.
PROBE_SIDES = (32, 64)
#: Float32 copies of a full-resolution mask that the smooth max keeps per tap for the
#: backward pass when it runs eagerly (z, its softmax, their product and exp; calibrated
#: against peak resident memory, benchmarks/RESULTS.md), and per mask in all
#: (mask, clamped mask, area ranking and the blended input's mask values).
EAGER_TAP_COPIES = 4
MASK_COPIES = 8
#: Copies of the perturbed input kept per mask and kept image (the two pyramid levels read,
#: the blend, the classifier's input and its gradient).
INPUT_COPIES = 5
#: What a fit holds besides its tensors (Lightning's Trainer, the optimiser, allocator slack),
#: measured on small runs (benchmarks/memory_estimate.py).
FIT_OVERHEAD = 128 * 2**20


@dataclass
class MemoryEstimate:
    """Peak bytes of one optimisation: ``fixed`` (the pyramids, the fit's overhead) +
    ``per_mask`` × masks."""

    fixed: int
    per_mask: int
    masks: int

    @property
    def total(self) -> int:
        return self.fixed + self.per_mask * self.masks


def activation_bytes(model: torch.nn.Module, image: torch.Tensor) -> tuple[int, int]:
    """``(shared, per_image)``: bytes the classifier keeps for its backward pass once per
    batch (weights its layers save) and per image (activations), for one C×H×W image. Both
    come from passes of one and two images; per-image bytes are measured at
    :data:`PROBE_SIDES` and extrapolated linearly in pixels (at the real size for small
    images, or when the model refuses the reduced sizes, e.g. ViT or a minimum side). A model
    that refuses the real size too raises :class:`ProbeFailed`."""
    height, width = image.shape[-2:]
    scale = [side / max(height, width) for side in PROBE_SIDES]
    if scale[-1] >= 1:
        return _probe(model, image)
    try:
        sizes = [(max(1, round(height * s)), max(1, round(width * s))) for s in scale]
        probes = [F.interpolate(image[None], size=size, mode="bilinear")[0] for size in sizes]
        (shared, low), (_, high) = [_probe(model, p) for p in probes]
    except ProbeFailed:  # the model takes one input size only, or a minimum side
        return _probe(model, image)
    (h_low, w_low), (h_high, w_high) = sizes
    per_pixel = max(0.0, (high - low) / (h_high * w_high - h_low * w_low))
    return shared, int(high + per_pixel * (height * width - h_high * w_high))


class ProbeFailed(Exception):
    """The classifier refused a probe image (any exception of its forward, as ``cause``)."""


def _probe(model: torch.nn.Module, image: torch.Tensor) -> tuple[int, int]:
    """:func:`_shared_and_per_image`, with any failure of the model's forward (a model's own
    checks raise anything: ``AssertionError``, ``ValueError``, ``RuntimeError``…) as
    :class:`ProbeFailed`."""
    try:
        return _shared_and_per_image(model, image)
    except torch.OutOfMemoryError:
        raise
    except Exception as error:
        raise ProbeFailed(f"{type(error).__name__}: {error}") from error


def _shared_and_per_image(model: torch.nn.Module, image: torch.Tensor) -> tuple[int, int]:
    one, two = (_saved_bytes(model, image[None].repeat(n, 1, 1, 1)) for n in (1, 2))
    per_image = max(0, two - one)
    return max(0, one - per_image), per_image


def _saved_bytes(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd saves in one forward pass of ``model(x)``."""
    storages: dict[int, int] = {}
    alive: list[torch.Tensor] = []  # held until the pass ends, so no address is reused

    def pack(tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        alive.append(tensor)
        # The graph keeps nothing: no backward runs, and a saved output held by its own
        # graph node would form a cycle the garbage collector cannot see.

    x = x.detach().requires_grad_(True)
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda _: None):
        model(x)
    alive.clear()
    return sum(storages.values())


def estimate_memory(
    model: torch.nn.Module,
    images: torch.Tensor,
    num_masks: int,
    config: MethodConfig,
    compile_option: bool | str,
) -> MemoryEstimate:
    """Peak memory of optimising ``num_masks`` input masks over ``images`` (N×C×H×W) at once:
    the pyramids, and per mask the smooth max (its taps when it runs eagerly, over the whole
    parameter grid: :func:`grid_pixels`), the mask copies, the perturbed inputs and the
    classifier's activations (measured; :class:`ProbeFailed` where the model refuses)."""
    n, channels, height, width = images.shape
    margin = math.ceil(config.sigma) if config.area_margin is None else config.area_margin
    padded = (height + 2 * margin) * (width + 2 * margin)
    grid = grid_pixels(height, width, config.step, margin)
    taps = (2 * maxconv_radius(config.step, config.sigma) + 1) ** 2
    compiled = compiled_smooth_max_available(config.coldness) and (
        compile_option is True
        or (compile_option == "auto" and compile_pays_off(taps * padded * config.max_iter))
    )
    if config.smoothing == "gaussian" or compiled:
        smooth = grid * 4  # the mask over the whole grid, before it is cropped
    else:
        smooth = (taps * EAGER_TAP_COPIES + 1) * grid * 4
    kept = 2 if config.variant == "dual" else 1
    pixels = channels * height * width
    shared, per_image = activation_bytes(model, images[0].float())
    per_mask = smooth + MASK_COPIES * padded * 4 + kept * (INPUT_COPIES * pixels * 4 + per_image)
    kernel = taps * config.step**2 * 4  # the smooth max's weights, (2r+1)²×step×step
    fixed = FIT_OVERHEAD + shared + kernel + n * config.num_levels * pixels * 4
    return MemoryEstimate(fixed, per_mask, num_masks)


def grid_pixels(height: int, width: int, step: int, margin: int) -> int:
    """Pixels of the mask the smooth max computes before cropping it to the image and its
    margin: the parameter grid (``⌈H/step⌉`` cells, plus ``⌈margin/step⌉`` each side) ×
    ``step`` px a cell. A large ``step`` makes it much larger than the image (step 200 on a
    512 px image: 1000² px), which the taps are computed over."""
    extra = 2 * math.ceil(margin / step)
    rows, cols = math.ceil(height / step) + extra, math.ceil(width / step) + extra
    return rows * step * cols * step


def check_chunk_memory(
    model: torch.nn.Module,
    images: torch.Tensor,
    num_masks: int,
    config: MethodConfig,
    trainer: TrainerConfig,
) -> None:
    """:func:`estimate_memory` then :func:`check_memory` for one fit's chunk. A model that
    refuses the probe passes (e.g. it takes one batch size only) is not refused: the check is
    skipped with a one-line warning saying why."""
    try:
        estimate = estimate_memory(model, images, num_masks, config, trainer.compile)
    except ProbeFailed as error:
        warnings.warn(
            f"memory check skipped: the model refused the probe passes that measure its "
            f"activations ({error}); trainer.memory_check=false (memory_check=False) skips it "
            "silently",
            RuntimeWarning,
            stacklevel=2,
        )
        return
    check_memory(estimate, run_device(trainer), tuple(images.shape[-2:]))


def available_memory(device: torch.device) -> int | None:
    """Bytes free for this process: the GPU's free memory, or the host's available memory
    (``MemAvailable``, capped by a cgroup limit); None where it cannot be read."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    available = None
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except OSError:
        pass
    limit = _cgroup_room()
    if limit is not None:
        available = limit if available is None else min(available, limit)
    return available


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup (v2) memory limit, if it has one."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(0, int(limit) - used)


def check_memory(estimate: MemoryEstimate, device: torch.device, size: tuple[int, int]) -> None:
    """Refuse, before any step, an optimisation whose estimated peak exceeds the memory
    available on ``device``, saying how to make it fit."""
    available = available_memory(device)
    if available is None or estimate.total <= available:
        return
    gib = 2**30
    fits = max(0, (available - estimate.fixed) // max(1, estimate.per_mask))
    fewer = (
        f"explain at most {fits} mask(s) at once (data.batch_size= images × targets × areas "
        "in a run, batch_size= pairs in the API) or use smaller images (data.size=)"
        if fits
        else "not even one mask fits: use smaller images (data.size=; data.batch_size= cannot help)"
    )
    raise UsageError(
        f"explaining {estimate.masks} mask(s) of {size[0]}×{size[1]} px at once needs about "
        f"{estimate.total / gib:.1f} GiB ({estimate.per_mask / gib:.2f} GiB per mask) but "
        f"{available / gib:.1f} GiB are available on {device.type}: {fewer}; or set "
        "memory_check=false to try anyway"
    )


def run_device(trainer: TrainerConfig) -> torch.device:
    """The device a fit with ``trainer`` uses (``accelerator``: auto | gpu | cuda | cpu …)."""
    accelerator = str(trainer.accelerator)
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")
