"""lightning-extremal: extremal perturbations (Fong, Patrick & Vedaldi, ICCV 2019) on Lightning.

The public names are imported on first use (PEP 562), so that ``import lightning_extremal``
(and the command line's ``--help``) does not pay for torch and Lightning until they are needed.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

#: Each public name and the module (relative to this package) that defines it.
_PUBLIC = {
    "ActivationDiff": "api",
    "AreaCurve": "api",
    "ObjectContributions": "api",
    "area_curve": "api",
    "object_contributions": "api",
    "object_coverage": "api",
    "ChannelComparison": "api",
    "ExtremalPerturbation": "api",
    "ExtremalResult": "api",
    "activation_diff": "api",
    "extremal_perturbation": "api",
    "feature_inversion": "api",
    "MeaningfulResult": "api",
    "meaningful_perturbation": "api",
    "MethodConfig": "config",
    "RunConfig": "config",
    "ExtremalPerturbationModule": "modules.image_masks",
    "FeatureInversionModule": "modules.inversion",
    "MeaningfulPerturbationModule": "modules.meaningful",
    "ChannelPerturbationModule": "modules.layer_masks",
    "LayerSpatialModule": "modules.layer_masks",
    "achieved_area": "ops.area",
    "area_loss": "ops.area",
    "ones_count": "ops.area",
    "reference_vector": "ops.area",
    "frozen": "ops.frozen",
    "get_layer": "ops.layers",
    "layer_activation": "ops.layers",
    "gaussian_mask": "ops.masks",
    "maxconv_kernel": "ops.masks",
    "smooth_max_mask": "ops.masks",
    "apply_pyramid": "ops.perturbation",
    "blur_pyramid": "ops.perturbation",
    "fade_pyramid": "ops.perturbation",
    "perturbation_pyramid": "ops.perturbation",
    "contrastive_reward": "ops.rewards",
    "simple_reward": "ops.rewards",
}

if TYPE_CHECKING:  # what type checkers and IDEs read; at run time __getattr__ imports
    from .api import (
        ActivationDiff,
        AreaCurve,
        ChannelComparison,
        ExtremalPerturbation,
        ExtremalResult,
        MeaningfulResult,
        ObjectContributions,
        activation_diff,
        area_curve,
        extremal_perturbation,
        feature_inversion,
        meaningful_perturbation,
        object_contributions,
        object_coverage,
    )
    from .config import MethodConfig, RunConfig
    from .modules.image_masks import ExtremalPerturbationModule
    from .modules.inversion import FeatureInversionModule
    from .modules.layer_masks import ChannelPerturbationModule, LayerSpatialModule
    from .modules.meaningful import MeaningfulPerturbationModule
    from .ops.area import achieved_area, area_loss, ones_count, reference_vector
    from .ops.frozen import frozen
    from .ops.layers import get_layer, layer_activation
    from .ops.masks import gaussian_mask, maxconv_kernel, smooth_max_mask
    from .ops.perturbation import apply_pyramid, blur_pyramid, fade_pyramid, perturbation_pyramid
    from .ops.rewards import contrastive_reward, simple_reward

__all__ = [
    "ActivationDiff",
    "AreaCurve",
    "ObjectContributions",
    "area_curve",
    "object_contributions",
    "object_coverage",
    "ChannelComparison",
    "ChannelPerturbationModule",
    "ExtremalPerturbation",
    "ExtremalPerturbationModule",
    "ExtremalResult",
    "FeatureInversionModule",
    "LayerSpatialModule",
    "MeaningfulPerturbationModule",
    "MeaningfulResult",
    "MethodConfig",
    "RunConfig",
    "achieved_area",
    "activation_diff",
    "apply_pyramid",
    "area_loss",
    "blur_pyramid",
    "contrastive_reward",
    "extremal_perturbation",
    "fade_pyramid",
    "feature_inversion",
    "frozen",
    "gaussian_mask",
    "get_layer",
    "layer_activation",
    "maxconv_kernel",
    "meaningful_perturbation",
    "perturbation_pyramid",
    "ones_count",
    "reference_vector",
    "simple_reward",
    "smooth_max_mask",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
