"""The Python API of the comparison method: ``meaningful_perturbation(model, images, ...)``
(Fong & Vedaldi, ICCV 2017)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import lightning as L
import torch

from ..config import MeaningfulConfig, TrainerConfig, validate_meaningful
from ..engine.classifier import predicted_classes, probe_classes
from ..engine.inputs import check_images, resolve_targets
from ..engine.trainer import make_trainer, quiet_lightning
from ..modules.meaningful import HISTORY_ROWS, MeaningfulPerturbationModule
from ..ops.frozen import frozen
from .options import Fit, to_configs

#: The run options :func:`meaningful_perturbation` takes: one device (the module does not
#: shard its masks) and nothing to compile.
MP_RUN_OPTIONS = (
    "seed",
    "accelerator",
    "precision",
    "logger",
    "callbacks",
    "progress",
    "log_every_n_steps",
    "batch_size",
    "default_root_dir",
)


@dataclass
class MeaningfulResult:
    """Deletion masks and their statistics for P (image, target) pairs × K values of λ₁.

    ``masks`` P×K×H×W in [0, 1]: ``1 − m``, 1 where the image is blurred away (the evidence
    the method found), so a mask reads like an extremal delete-game mask and is a saliency map
    as it is; ``scores`` P×K: ``f_c`` of the perturbed image after the last step (probability
    or logit, unjittered); ``achieved_areas`` P×K: the fraction of the image each mask deletes
    (an outcome of λ₁, not requested); ``history`` maps ``"loss"``, ``"score"``, ``"l1"``,
    ``"tv"`` (the weighted terms) and ``"deleted_area"`` to P×K×T per-step values;
    ``image_index`` and ``targets`` (P,) say which image and class each row explains;
    ``l1_coeffs`` (K,) the λ₁ of each column.
    """

    masks: torch.Tensor
    scores: torch.Tensor
    achieved_areas: torch.Tensor
    history: dict[str, torch.Tensor]
    image_index: torch.Tensor
    targets: torch.Tensor
    l1_coeffs: torch.Tensor


def meaningful_perturbation(
    model: torch.nn.Module,
    images: torch.Tensor,
    targets: Any = None,
    l1_coeffs: Sequence[float] | float | None = None,
    **options: Any,
) -> MeaningfulResult:
    """Meaningful perturbations (Fong & Vedaldi, ICCV 2017) of ``images`` for ``targets``.

    Per pair and per λ₁ in ``l1_coeffs`` (default: the paper's 1e-4 per pixel), a deletion
    mask minimising ``λ₁‖1 − m‖₁ + λ₂·TV_β(m) + f_c(Φ(x(· − τ); m))``. ``images`` N×C×H×W
    float (as the model takes them); ``targets`` as for
    :func:`~lightning_extremal.extremal_perturbation` (None: each image's predicted class).
    ``options``: the fields of :class:`~lightning_extremal.config.MeaningfulConfig`
    (``tv_coeff``, ``tv_beta``, ``grid``, ``blur_sigma``, ``max_iter``, ``lr``, ``jitter``,
    ``score``, …) and the run options ``seed``, ``accelerator``, ``precision``, ``logger``,
    ``callbacks``, ``progress``, ``log_every_n_steps``, ``batch_size`` (pairs per Lightning
    fit; None = all in one) and ``default_root_dir``. The model is left exactly as given.

    Unlike extremal perturbations, the deleted area is not chosen: it follows from λ₁ (and
    from the image and the model), so masks of different images or λ₁ are not comparable in
    area — ``achieved_areas`` reports it.
    """
    if l1_coeffs is not None:
        is_number = isinstance(l1_coeffs, (int, float)) and not isinstance(l1_coeffs, bool)
        options["l1_coeffs"] = [l1_coeffs] if is_number else list(l1_coeffs)
    config, trainer, fit = to_configs(options, MeaningfulConfig(), MP_RUN_OPTIONS)
    validate_meaningful(config)
    return meaningful(model, images, targets, config, trainer, fit)


def meaningful(
    model: torch.nn.Module,
    images: torch.Tensor,
    targets: Any,
    config: MeaningfulConfig,
    trainer: TrainerConfig,
    fit: Fit | None = None,
) -> MeaningfulResult:
    """:func:`meaningful_perturbation` with its settings as validated configs, whole. The fits
    run on one device of ``trainer.accelerator`` (the module does not shard its masks)."""
    fit = fit or Fit()
    trainer = replace(trainer, devices=1, num_nodes=1, strategy="auto")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    check_images(images)
    with frozen(model):
        num_classes = probe_classes(model, images)
        if targets is None:
            targets = predicted_classes(model, images).tolist()
        image_index, classes = resolve_targets(targets, len(images), num_classes)
        L.seed_everything(trainer.seed, verbose=False)
        chunk = fit.batch_size or len(classes)
        parts = [
            _optimise(
                model,
                images,
                image_index[s : s + chunk],
                classes[s : s + chunk],
                config,
                trainer,
                fit,
            )
            for s in range(0, len(classes), chunk)
        ]
    merged = {k: torch.cat([p[k] for p in parts]) for k in ("masks", "scores", "achieved_areas")}
    history = {k: torch.cat([p["history"][k] for p in parts]) for k in HISTORY_ROWS}
    return MeaningfulResult(
        history=history,
        image_index=image_index,
        targets=classes,
        l1_coeffs=torch.tensor(config.l1_coeffs, dtype=torch.float64),
        **merged,
    )


def _optimise(
    model: torch.nn.Module,
    images: torch.Tensor,
    image_index: torch.Tensor,
    targets: torch.Tensor,
    config: MeaningfulConfig,
    trainer: TrainerConfig,
    fit: Fit,
) -> dict[str, Any]:
    """One Lightning fit over a chunk of pairs; returns its final masks and history."""
    used, local_index = torch.unique(image_index, return_inverse=True)
    module = MeaningfulPerturbationModule(model, images[used], targets, local_index, config)
    with quiet_lightning():
        lightning_trainer = make_trainer(
            trainer, config.max_iter, fit.callbacks, fit.logger, fit.default_root_dir
        )
        lightning_trainer.fit(module)
    out = module.final()
    pairs, k = module.num_pairs, module.num_coeffs
    rows = module.history.detach().cpu().view(config.max_iter, len(HISTORY_ROWS), pairs, k)
    out["history"] = {
        name: rows[:, i].permute(1, 2, 0).contiguous() for i, name in enumerate(HISTORY_ROWS)
    }
    return out
