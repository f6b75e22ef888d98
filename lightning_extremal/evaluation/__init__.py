"""Evaluation of attribution methods: the pointing game, baselines and faithfulness metrics."""

from ..data.datasets import COCOPointing, PointingItem, SyntheticPointing, VOCPointing
from ..ops.pointing import (
    ep_saliency,
    is_difficult_pair,
    pointing_accuracy,
    pointing_hit,
    pointing_map,
    scaled_tolerance,
)
from .baselines import METHODS, resolve_layers, saliency
from .faithfulness import (
    deletion_auc,
    insertion_auc,
    model_randomisation_check,
    perturbation_curve,
    spearman,
)

__all__ = [
    "COCOPointing",
    "METHODS",
    "PointingItem",
    "SyntheticPointing",
    "VOCPointing",
    "deletion_auc",
    "ep_saliency",
    "insertion_auc",
    "is_difficult_pair",
    "model_randomisation_check",
    "perturbation_curve",
    "pointing_accuracy",
    "pointing_hit",
    "pointing_map",
    "resolve_layers",
    "saliency",
    "scaled_tolerance",
    "spearman",
]
