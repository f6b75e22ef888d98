"""lightning-extremal: extremal perturbations (Fong, Patrick & Vedaldi, ICCV 2019) on Lightning."""

from .api import (
    ActivationDiff,
    ChannelComparison,
    ExtremalPerturbation,
    ExtremalResult,
    activation_diff,
    extremal_perturbation,
    feature_inversion,
)
from .config import MethodConfig, RunConfig
from .modules.image_masks import ExtremalPerturbationModule
from .modules.inversion import FeatureInversionModule
from .modules.layer_masks import ChannelPerturbationModule, LayerSpatialModule
from .ops.area import achieved_area, area_loss, ones_count, reference_vector
from .ops.frozen import frozen
from .ops.layers import get_layer, layer_activation
from .ops.masks import gaussian_mask, maxconv_kernel, smooth_max_mask
from .ops.perturbation import apply_pyramid, blur_pyramid, fade_pyramid, perturbation_pyramid
from .ops.rewards import contrastive_reward, simple_reward

__all__ = [
    "ActivationDiff",
    "ChannelComparison",
    "ChannelPerturbationModule",
    "ExtremalPerturbation",
    "ExtremalPerturbationModule",
    "ExtremalResult",
    "FeatureInversionModule",
    "LayerSpatialModule",
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
    "perturbation_pyramid",
    "ones_count",
    "reference_vector",
    "simple_reward",
    "smooth_max_mask",
]
__version__ = "0.1.0"
