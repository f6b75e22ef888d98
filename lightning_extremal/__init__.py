"""lightning-extremal: extremal perturbations (Fong, Patrick & Vedaldi, ICCV 2019) on Lightning."""

from .api import ExtremalPerturbation, ExtremalResult, extremal_perturbation
from .area import achieved_area, area_loss, ones_count, reference_vector
from .config import MethodConfig, RunConfig
from .diffing import ActivationDiff, ChannelComparison, activation_diff
from .freeze import frozen
from .inversion import FeatureInversionModule, feature_inversion
from .layer_module import ChannelPerturbationModule, LayerSpatialModule
from .layers import get_layer, layer_activation
from .masks import gaussian_mask, maxconv_kernel, smooth_max_mask
from .module import ExtremalPerturbationModule
from .perturbation import apply_pyramid, blur_pyramid, fade_pyramid, perturbation_pyramid
from .rewards import contrastive_reward, simple_reward

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
