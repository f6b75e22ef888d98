"""The public Python API: extremal perturbations, feature inversion, activation diffing and
the paper's analyses (area curve, object contributions)."""

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
    extremal_perturbation,
    method_options,
)
from .inversion import feature_inversion

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
    "activation_diff",
    "extremal_perturbation",
    "feature_inversion",
    "method_options",
]
