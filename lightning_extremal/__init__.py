"""lightning-extremal: extremal perturbations (Fong, Patrick & Vedaldi, ICCV 2019) on Lightning."""

from .api import ExtremalPerturbation, ExtremalResult, extremal_perturbation
from .area import achieved_area, area_loss, reference_vector
from .config import MethodConfig, RunConfig
from .freeze import frozen
from .masks import gaussian_mask, maxconv_kernel, smooth_max_mask
from .module import ExtremalPerturbationModule
from .perturbation import apply_pyramid, blur_pyramid, fade_pyramid, perturbation_pyramid
from .rewards import contrastive_reward, simple_reward

__all__ = [
    "ExtremalPerturbation",
    "ExtremalPerturbationModule",
    "ExtremalResult",
    "MethodConfig",
    "RunConfig",
    "achieved_area",
    "apply_pyramid",
    "area_loss",
    "blur_pyramid",
    "contrastive_reward",
    "extremal_perturbation",
    "fade_pyramid",
    "frozen",
    "gaussian_mask",
    "maxconv_kernel",
    "perturbation_pyramid",
    "reference_vector",
    "simple_reward",
    "smooth_max_mask",
]
__version__ = "0.1.0"
