"""Faithfulness of saliency maps: deletion/insertion AUC (RISE) and the randomisation check.

Deletion and insertion (Petsiuk et al., BMVC 2018) move pixels, most salient first, between the
image and a baseline in K steps and take the area under the class-probability curve: a map that
points at the evidence makes the probability fall fast when deleting (low AUC) and rise fast
when inserting (high AUC). The model-randomisation sanity check (Adebayo et al., NeurIPS 2018)
re-initialises the weights (layer by layer from the top, or all at once) and measures how much
the maps change (Spearman rank correlation with the maps of the trained model): a method whose
maps do not change does not explain the model.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..ops.frozen import frozen
from ..ops.perturbation import gaussian_blur

#: Blur of the insertion baseline, px: RISE's ``gkern(11, 5)`` (σ = 5; cut at ±4σ here).
INSERTION_BLUR_SIGMA = 5.0
#: Steps K of the deletion/insertion curves (K + 1 points from 0 to all pixels moved).
CURVE_STEPS = 50
#: Layers the randomisation check re-initialises (batch norm is left alone: its
#: ``reset_parameters`` is an identity map, not a random one).
RANDOMISED_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def curve_auc(curve: torch.Tensor) -> float:
    """Trapezoidal area under ``curve`` (K + 1 values at 0, 1/K, …, 1): ``Σ (c_i + c_{i+1})/2K``."""
    if curve.numel() < 2:
        raise ValueError("a curve needs at least two points")
    return float(torch.trapezoid(curve.double(), dx=1.0 / (curve.numel() - 1)))


def saliency_order(saliency: torch.Tensor) -> torch.Tensor:
    """Pixel indices (flattened H×W) from the most to the least salient; ties in raster order."""
    return torch.argsort(saliency.flatten(), descending=True, stable=True)


def perturbation_curve(
    model: nn.Module,
    image: torch.Tensor,
    target: int,
    saliency: torch.Tensor,
    mode: str = "deletion",
    steps: int = CURVE_STEPS,
    baseline: torch.Tensor | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """Class probability ``p_t(x_k)`` for k = 0…K, moving ``⌈k·HW/K⌉`` pixels in saliency order.

    ``image`` C×H×W, ``saliency`` H×W. ``mode="deletion"``: ``x_0`` is the image and pixels are
    replaced by ``baseline`` (default zeros, as RISE); ``"insertion"``: ``x_0`` is ``baseline``
    (default the image blurred with σ = 5 px, as RISE) and the image's pixels are put back.
    ``p_t`` is the softmax probability of ``target``. Returns K + 1 values.
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion'; got {mode!r}")
    if saliency.shape != image.shape[-2:]:
        raise ValueError(
            f"saliency {tuple(saliency.shape)} must be H×W of the image {tuple(image.shape)}"
        )
    if baseline is None:
        if mode == "deletion":
            baseline = torch.zeros_like(image)
        else:
            baseline = gaussian_blur(image[None], INSERTION_BLUR_SIGMA)[0]
    start, finish = (image, baseline) if mode == "deletion" else (baseline, image)
    pixels = image.shape[-2] * image.shape[-1]
    order = saliency_order(saliency)
    # rank[u] = position of pixel u in the order; x_k takes `finish` where rank < moved_k.
    rank = torch.empty_like(order)
    rank[order] = torch.arange(pixels)
    moved = [(k * pixels + steps - 1) // steps for k in range(steps + 1)]
    probabilities = []
    device = next(iter(model.parameters()), image).device
    with frozen(model), torch.no_grad():
        for s in range(0, steps + 1, batch_size):
            counts = torch.tensor(moved[s : s + batch_size])
            take = (rank.view(1, 1, *saliency.shape) < counts.view(-1, 1, 1, 1)).to(image.dtype)
            batch = start[None] * (1 - take) + finish[None] * take
            logits = model(batch.to(device))
            logits = logits.flatten(2).mean(-1) if logits.dim() > 2 else logits
            probabilities.append(logits.softmax(1)[:, target].cpu())
    return torch.cat(probabilities)


def deletion_auc(model, image, target, saliency, steps: int = CURVE_STEPS, **kw) -> float:
    """AUC of the deletion curve (lower = more faithful)."""
    return curve_auc(perturbation_curve(model, image, target, saliency, "deletion", steps, **kw))


def insertion_auc(model, image, target, saliency, steps: int = CURVE_STEPS, **kw) -> float:
    """AUC of the insertion curve (higher = more faithful)."""
    return curve_auc(perturbation_curve(model, image, target, saliency, "insertion", steps, **kw))


# --- model randomisation ---------------------------------------------------------------------


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1…n of a 1-D tensor, tied values sharing their average rank (float64)."""
    values = values.flatten().double()
    order = torch.argsort(values, stable=True)
    sorted_values = values[order]
    _, inverse, counts = torch.unique_consecutive(
        sorted_values, return_inverse=True, return_counts=True
    )
    ends = torch.cumsum(counts, 0).double()
    mean_rank = ends - (counts.double() - 1) / 2  # average of the 1-based ranks in each tie run
    ranks = torch.empty_like(values)
    ranks[order] = mean_rank[inverse]
    return ranks


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's ρ of two maps: the Pearson correlation of their average ranks (NaN if constant)."""
    if a.numel() != b.numel():
        raise ValueError(f"maps differ in size: {tuple(a.shape)} vs {tuple(b.shape)}")
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = (ra.square().sum() * rb.square().sum()).sqrt()
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


def randomisable_layers(model: nn.Module) -> list[str]:
    """Names of the conv/linear layers, from the output down (the cascading order)."""
    names = [n for n, m in model.named_modules() if isinstance(m, RANDOMISED_LAYERS)]
    return names[::-1]


def randomised_models(
    model: nn.Module, mode: str = "cascading", seed: int = 0
) -> Iterator[tuple[str, nn.Module]]:
    """Copies of ``model`` with re-initialised weights (``reset_parameters``, seeded).

    ``mode="cascading"``: after each layer, from the top down, a copy with that layer and all
    the ones above it re-initialised, named by the layer; ``"full"``: one copy with every
    conv/linear layer re-initialised, named ``"all"``. ``model`` itself is not modified.
    """
    if mode not in ("cascading", "full"):
        raise ValueError(f"mode must be 'cascading' or 'full'; got {mode!r}")
    layers = randomisable_layers(model)
    if not layers:
        raise ValueError("the model has no conv/linear layer to randomise")
    randomised = copy.deepcopy(model)
    modules = dict(randomised.named_modules())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name in layers:
            modules[name].reset_parameters()
            if mode == "cascading":
                yield name, copy.deepcopy(randomised)
    if mode == "full":
        yield "all", randomised


@dataclass
class SanityResult:
    """Mean Spearman ρ between the trained model's maps and each randomised model's maps."""

    layers: list[str]
    spearman: list[float]
    spearman_abs: list[float]


def model_randomisation_check(
    model: nn.Module,
    images: torch.Tensor,
    targets: Sequence[int],
    saliency_fn: Callable[[nn.Module, torch.Tensor, Sequence[int]], torch.Tensor],
    mode: str = "cascading",
    seed: int = 0,
) -> SanityResult:
    """Adebayo et al.'s model-randomisation test for ``saliency_fn(model, images, targets)``.

    For each randomised copy (:func:`randomised_models`): ρ = mean over the images of
    Spearman(s_trained, s_random), and the same on |s| (Adebayo et al. report both). Values
    near 1 mean the maps ignore the weights — the method fails the check.
    """
    reference = saliency_fn(model, images, targets)
    names, rho, rho_abs = [], [], []
    for name, randomised in randomised_models(model, mode, seed):
        maps = saliency_fn(randomised, images, targets)
        names.append(name)
        rho.append(_mean([spearman(a, b) for a, b in zip(reference, maps, strict=True)]))
        rho_abs.append(
            _mean([spearman(a.abs(), b.abs()) for a, b in zip(reference, maps, strict=True)])
        )
    return SanityResult(names, rho, rho_abs)


def _mean(values: list[float]) -> float:
    finite = [v for v in values if v == v]
    return sum(finite) / len(finite) if finite else float("nan")
