"""The perturbation pyramid: blurred (or faded) copies of an image that a mask blends between."""

from __future__ import annotations

import math

import torch
from torchvision.transforms.v2 import functional as TF

from .compiling import Compiled

#: Gaussian kernels are cut at ±4σ, the reference implementation's support.
KERNEL_TRUNCATE = 4.0


def kernel_half_width(sigma: float, size: int | None = None) -> int:
    """Half-width ⌈4σ⌉ of a truncated Gaussian kernel, capped at ``size - 1`` when given.

    Reflect padding cannot reach further than the image, so for images smaller than the
    kernel the kernel is truncated to the image (a documented difference only for tiny images).
    """
    half = math.ceil(KERNEL_TRUNCATE * sigma)
    return half if size is None else max(0, min(half, size - 1))


def gaussian_blur(images: torch.Tensor, sigma: float, padding: str = "reflect") -> torch.Tensor:
    """Separable Gaussian blur ``y = g_σ * x`` of ``images`` (…×C×H×W), with torchvision's kernel.

    The kernel is ``g(t) ∝ exp(-t²/2σ²)`` on ``t ∈ [-⌈4σ⌉, ⌈4σ⌉]``. ``padding="reflect"`` mirrors
    the image at the border (so borders do not darken); ``padding="zeros"`` pads with zeros,
    like the reference implementation. ``sigma == 0`` returns the input unchanged.
    """
    if sigma <= 0:
        return images
    height, width = images.shape[-2:]
    if padding == "zeros":
        # Zero-pad by the full half-width first: torchvision's reflect padding then only
        # mirrors zeros, which is exactly a zero-padded convolution.
        half = kernel_half_width(sigma)
        padded = torch.nn.functional.pad(images, (half, half, half, half))
        blurred = _separable_blur(padded, sigma, half, half)
        return blurred[..., half : half + height, half : half + width]
    if padding != "reflect":
        raise ValueError(f"padding must be one of 'reflect', 'zeros'; got {padding!r}")
    return _separable_blur(
        images, sigma, kernel_half_width(sigma, height), kernel_half_width(sigma, width)
    )


def _separable_blur(images: torch.Tensor, sigma: float, half_y: int, half_x: int) -> torch.Tensor:
    # torchvision builds a 2-D kernel; a k×1 then a 1×k pass is the same blur at O(k) cost.
    if half_x > 0:
        images = TF.gaussian_blur(images, [2 * half_x + 1, 1], [sigma, sigma])
    if half_y > 0:
        images = TF.gaussian_blur(images, [1, 2 * half_y + 1], [sigma, sigma])
    return images


def blur_sigmas(num_levels: int, max_blur: float) -> list[float]:
    """Blur of each level, ``σ_l = max_blur·(1 − l/(L−1))`` for ``l = 0…L−1`` (last = image)."""
    return [max_blur * (1 - level / (num_levels - 1)) for level in range(num_levels)]


def blur_pyramid(
    images: torch.Tensor, num_levels: int = 8, max_blur: float = 20.0, padding: str = "reflect"
) -> torch.Tensor:
    """Blur pyramid ``y_{nlcvu} = [g_{σ_l} * x_n]_{cvu}`` of ``images`` (N×C×H×W) → N×L×C×H×W.

    Level 0 is the most blurred (σ = ``max_blur``), level L−1 the image itself.
    """
    levels = [gaussian_blur(images, s, padding) for s in blur_sigmas(num_levels, max_blur)]
    return torch.stack(levels, dim=1)


def fade_pyramid(images: torch.Tensor, num_levels: int = 8) -> torch.Tensor:
    """Fade pyramid ``y_{nlcvu} = x_{ncvu}·l/(L−1)`` (N×C×H×W → N×L×C×H×W): level 0 is zero."""
    scale = torch.linspace(0, 1, num_levels, dtype=images.dtype, device=images.device)
    return images.unsqueeze(1) * scale.view(1, -1, 1, 1, 1)


def perturbation_pyramid(
    images: torch.Tensor,
    kind: str = "blur",
    num_levels: int = 8,
    max_blur: float = 20.0,
    padding: str = "reflect",
) -> torch.Tensor:
    """The pyramid of perturbation ``kind`` (``"blur"`` or ``"fade"``), N×C×H×W → N×L×C×H×W."""
    if kind == "blur":
        return blur_pyramid(images, num_levels, max_blur, padding)
    if kind == "fade":
        return fade_pyramid(images, num_levels)
    raise ValueError(f"perturbation must be one of 'blur', 'fade'; got {kind!r}")


def apply_pyramid(
    pyramid: torch.Tensor, masks: torch.Tensor, image_index: torch.Tensor
) -> torch.Tensor:
    """Blend pyramid levels by a mask: piecewise-linear interpolation between adjacent levels.

    With ``w = m·(L−1)``, ``k = ⌊w⌋`` and ``f = w − k``, the output for mask ``b`` is
    ``x_{bcvu} = (1 − f)·y_{n(b),k,c,v,u} + f·y_{n(b),min(k+1, L−1),c,v,u}``, so ``m = 1`` gives
    the image and ``m = 0`` the most perturbed level, and ``m = l/(L−1)`` gives level ``l``
    exactly.

    Shapes: ``pyramid`` N×L×C×H×W, ``masks`` B×1×H×W in [0, 1], ``image_index`` (B,) long
    (which image each mask perturbs) → B×C×H×W. Gradients flow to ``masks`` only; levels
    are read with flat indices rather than an expanded copy of the pyramid.
    """
    _, num_levels, channels, height, width = pyramid.shape
    level_stride = channels * height * width
    w = masks * (num_levels - 1)
    k = w.detach().floor()
    frac = w - k
    k = k.long()
    k1 = (k + 1).clamp(max=num_levels - 1)
    pixel = torch.arange(height * width, device=masks.device).view(1, 1, height, width)
    channel = torch.arange(channels, device=masks.device).view(1, -1, 1, 1) * (height * width)
    base = (image_index.view(-1, 1, 1, 1) * num_levels) * level_stride + channel + pixel
    flat = pyramid.reshape(-1)
    y0 = flat.take(base + k * level_stride)
    y1 = flat.take(base + k1 * level_stride)
    return y0 + frac * (y1 - y0)


#: :func:`apply_pyramid` compiled into one pass per direction (faster: the
#: gathers, the interpolation and its gradient fused); used where the smooth max is compiled.
compiled_apply_pyramid = Compiled(apply_pyramid)
