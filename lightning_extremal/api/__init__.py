"""The public Python API: extremal perturbations, feature inversion and activation diffing."""

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
    "ChannelComparison",
    "ExtremalPerturbation",
    "ExtremalResult",
    "activation_diff",
    "extremal_perturbation",
    "feature_inversion",
    "method_options",
]
