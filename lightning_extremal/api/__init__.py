"""The public Python API: extremal perturbations, feature inversion, activation diffing, the
paper's analyses (area curve, object contributions) and the comparison method, meaningful
perturbations."""

from .analyses import (
    AreaCurve,
    ObjectContributions,
    area_curve,
    object_contributions,
    object_coverage,
)
from .diffing import ActivationDiff, ChannelComparison, activation_diff
from .extremal import (
    ExtremalPerturbation,
    ExtremalResult,
    explain,
    extremal_perturbation,
    mask_method,
)
from .inversion import feature_inversion
from .meaningful import MeaningfulResult, meaningful, meaningful_perturbation
from .options import Fit

__all__ = [
    "ActivationDiff",
    "AreaCurve",
    "ObjectContributions",
    "area_curve",
    "object_contributions",
    "object_coverage",
    "ChannelComparison",
    "ExtremalPerturbation",
    "ExtremalResult",
    "MeaningfulResult",
    "activation_diff",
    "extremal_perturbation",
    "feature_inversion",
    "meaningful_perturbation",
    "meaningful",
    "explain",
    "mask_method",
    "Fit",
]
