"""Attribution baselines of the paper's pointing-game table, behind one interface.

``saliency(method, model, images, targets, **options) -> N×H×W``: one map per (image, class)
row, at the input's resolution. Gradient, deconvnet, guided backprop and Grad-CAM come from
Captum; RISE, excitation backprop (MWP) and contrastive excitation backprop (cMWP; Zhang et
al., ECCV 2016) are implemented here; ``center`` is the centre-point baseline;
``extremal_perturbation`` and ``meaningful_perturbation`` call this package's API. Every method leaves the model exactly as
given (training flags, ``requires_grad``, no hooks, forwards restored).
"""

from __future__ import annotations

import types
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..api import extremal_perturbation, meaningful_perturbation
from ..api.extremal import ExtremalResult
from ..ops.frozen import frozen
from ..ops.layers import called_once, trace_calls

#: Areas of the extremal-perturbation benchmark on VOC (and the synthetic set): the reference's.
VOC_AREAS: tuple[float, ...] = (0.025, 0.05, 0.1, 0.2)
#: Areas of the extremal-perturbation benchmark on COCO: the reference's.
COCO_AREAS: tuple[float, ...] = (0.018, 0.025, 0.05, 0.1)
#: RISE defaults: 8000 masks of 7×7 cells kept with probability 0.5 (TorchRay's benchmark).
RISE_NUM_MASKS = 8000
RISE_CELLS = 7
RISE_KEEP = 0.5
#: Added to excitation-backprop denominators, as TorchRay (0/0 → 0 where nothing is excited).
MWP_EPS = 1e-20

Targets = Sequence[int] | torch.Tensor


# --- layers ----------------------------------------------------------------------------------


@dataclass
class LayerChoice:
    """Module names used by the layer-based methods (see :func:`resolve_layers`)."""

    grad_cam: str  # Grad-CAM's feature map: the last convolution's rectified output
    saliency: str  # where MWP/cMWP read the excitation (VGG16: pool4; ResNet50: layer3)
    contrast: str  # where cMWP subtracts the dual signal (VGG16: relu7; ResNet50: avgpool)
    classifier: str  # the last linear/conv layer, negated for cMWP's dual unit


def _known_layers(model: nn.Module) -> LayerChoice | None:
    """TorchRay's benchmark layers for torchvision VGG and ResNet (also when wrapped)."""
    from torchvision.models import VGG, ResNet

    for prefix, module in model.named_modules():
        dot = f"{prefix}." if prefix else ""
        if isinstance(module, VGG):
            pools = [i for i, m in enumerate(module.features) if isinstance(m, nn.MaxPool2d)]
            last_linear = [i for i, m in enumerate(module.classifier) if isinstance(m, nn.Linear)][
                -1
            ]
            return LayerChoice(
                grad_cam=f"{dot}features.{pools[-1] - 1}",  # relu5_3
                saliency=f"{dot}features.{pools[3]}",  # pool4
                contrast=f"{dot}classifier.{last_linear - 2}",  # relu7
                classifier=f"{dot}classifier.{last_linear}",
            )
        if isinstance(module, ResNet):
            return LayerChoice(
                grad_cam=f"{dot}layer4",
                saliency=f"{dot}layer3",
                contrast=f"{dot}avgpool",
                classifier=f"{dot}fc",
            )
    return None


def resolve_layers(model: nn.Module, images: torch.Tensor, **names: str | None) -> LayerChoice:
    """The layers of Grad-CAM, MWP and cMWP: given names win, then known models, then rules.

    Rules for other models, from one traced forward: Grad-CAM = the last leaf module after the
    last ``Conv2d`` that keeps its output shape (its BN/ReLU); MWP's saliency layer = the first
    ``ReLU`` whose output has the Grad-CAM map's spatial size (one block below the top, like
    pool4 in VGG16); classifier = the last ``Linear``/``Conv2d`` that runs; contrast = the leaf
    that runs just before the classifier, skipping dropout/flatten/identity. Grad-CAM's layer
    is never a module that runs several times (a shared activation: the call before it);
    for the others such a module is replaced by its parent.
    """
    modules = dict(model.named_modules())
    for key, value in names.items():
        if value is not None and value not in modules:
            sample = ", ".join(list(modules)[1:12])
            raise ValueError(f"{key} layer {value!r} is not a module of the model; e.g. {sample}")
    known = _known_layers(model)
    if known is None:
        known = _rule_layers(model, images, modules)
    for key, value in names.items():
        if value is not None:
            setattr(known, key, value)
    return known


def _rule_layers(model: nn.Module, images: torch.Tensor, modules: dict) -> LayerChoice:
    # Leaves, and convolutions with children (EfficientNet-Lite's same-padding Conv2d holds
    # its padding module).
    calls = [
        c
        for c in trace_calls(model, images)
        if isinstance(c.module, nn.Conv2d) or next(c.module.children(), None) is None
    ]
    counts = Counter(c.name for c in calls)
    conv_at = [i for i, c in enumerate(calls) if isinstance(c.module, nn.Conv2d)]
    if not conv_at:
        raise ValueError(
            "the model has no Conv2d layer: pass the layers explicitly (grad_cam_layer=, "
            "mwp_layer=, contrast_layer=, classifier_layer=)"
        )
    top = conv_at[-1]
    cam = top
    while cam + 1 < len(calls) and calls[cam + 1].shape == calls[top].shape:
        cam += 1
    while cam > top and counts[calls[cam].name] > 1:  # a shared activation: the call before it
        cam -= 1
    spatial = calls[cam].shape[-2:] if calls[cam].shape else None
    saliency = next(
        (
            c.name
            for c in calls
            if isinstance(c.module, nn.ReLU) and c.shape is not None and c.shape[-2:] == spatial
        ),
        calls[cam].name,
    )
    affine = [i for i, c in enumerate(calls) if isinstance(c.module, (nn.Linear, nn.Conv2d))]
    classifier = affine[-1]
    skip = (nn.Dropout, nn.Flatten, nn.Identity)
    contrast = classifier - 1
    while contrast > 0 and isinstance(calls[contrast].module, skip):
        contrast -= 1
    return LayerChoice(
        grad_cam=called_once(calls[cam].name, calls, modules),
        saliency=called_once(saliency, calls, modules),
        contrast=called_once(calls[max(contrast, 0)].name, calls, modules),
        classifier=calls[classifier].name,
    )


# --- helpers ---------------------------------------------------------------------------------


class _Scores(nn.Module):
    """``model(x)`` as N×classes scores (spatial outputs of fully-convolutional models averaged)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return out.flatten(2).mean(-1) if out.dim() > 2 else out


def _targets(targets: Targets, count: int) -> list[int]:
    values = targets.tolist() if isinstance(targets, torch.Tensor) else list(targets)
    if len(values) != count:
        raise ValueError(f"got {len(values)} targets for {count} images (one per image)")
    return [int(t) for t in values]


def _device(model: nn.Module, images: torch.Tensor) -> torch.device:
    param = next(iter(model.parameters()), None)
    return param.device if param is not None else images.device


def _check(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(
            f"images must be an N×C×H×W tensor; got {getattr(images, 'shape', images)}"
        )


# --- Captum methods --------------------------------------------------------------------------


def _captum(method: str, model: nn.Module, images: torch.Tensor, targets: Targets, **kw: Any):
    from captum.attr import Deconvolution, GuidedBackprop, Saliency

    classes = {"gradient": Saliency, "deconvnet": Deconvolution, "guided": GuidedBackprop}
    _check(images)
    target = _targets(targets, len(images))
    with frozen(model), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*backward hooks on ReLU.*")
        x = images.detach().to(_device(model, images)).clone().requires_grad_(True)
        attribution = classes[method](_Scores(model)).attribute(x, target=target, **kw)
    return attribution.detach().abs().amax(1).cpu()


def gradient_saliency(model: nn.Module, images: torch.Tensor, targets: Targets) -> torch.Tensor:
    """Gradient (Simonyan et al.): ``s_u = max_c |∂y_t/∂x_{cu}|`` (Captum ``Saliency``) → N×H×W."""
    return _captum("gradient", model, images, targets)


def deconvnet_saliency(model: nn.Module, images: torch.Tensor, targets: Targets) -> torch.Tensor:
    """DeconvNet (Zeiler & Fergus): ReLU backward passes ``max(0, g)``; ``max_c |·|`` → N×H×W."""
    return _captum("deconvnet", model, images, targets)


def guided_backprop_saliency(
    model: nn.Module, images: torch.Tensor, targets: Targets
) -> torch.Tensor:
    """Guided backprop (Springenberg et al.): ReLU backward ``[x > 0]·max(0, g)`` → N×H×W."""
    return _captum("guided", model, images, targets)


def grad_cam_saliency(
    model: nn.Module, images: torch.Tensor, targets: Targets, layer: str | None = None
) -> torch.Tensor:
    """Grad-CAM: ``s = ReLU(Σ_c ᾱ_c A_c)``, ``ᾱ_c = mean_u ∂y_t/∂A_{cu}``, upsampled → N×H×W.

    ``A`` is the output of ``layer`` (default: :func:`resolve_layers`); Captum ``LayerGradCam``
    with bilinear upsampling to the input size.
    """
    from captum.attr import LayerAttribution, LayerGradCam

    _check(images)
    target = _targets(targets, len(images))
    with frozen(model):
        x = images.detach().to(_device(model, images)).clone().requires_grad_(True)
        name = resolve_layers(model, x, grad_cam=layer).grad_cam
        module = dict(model.named_modules())[name]
        cam = LayerGradCam(_Scores(model), module).attribute(
            x, target=target, relu_attributions=True
        )
        cam = LayerAttribution.interpolate(cam.detach(), tuple(images.shape[-2:]), "bilinear")
    return cam[:, 0].cpu()


# --- RISE ------------------------------------------------------------------------------------


def rise_masks(
    count: int, size: tuple[int, int], cells: int, keep: float, generator: torch.Generator
) -> torch.Tensor:
    """RISE masks (Petsiuk et al., 2018) → count×1×H×W in [0, 1].

    A ``cells×cells`` grid of Bernoulli(``keep``) values is upsampled bilinearly to
    ``(cells + 1)·⌈H/cells⌉`` × ``(cells + 1)·⌈W/cells⌉`` and cropped at a random shift in
    ``[0, ⌈H/cells⌉) × [0, ⌈W/cells⌉)``.
    """
    height, width = size
    cell_h, cell_w = -(-height // cells), -(-width // cells)
    grid = (torch.rand(count, 1, cells, cells, generator=generator) < keep).float()
    up = F.interpolate(
        grid,
        size=((cells + 1) * cell_h, (cells + 1) * cell_w),
        mode="bilinear",
        align_corners=False,
    )
    dy = torch.randint(0, cell_h, (count,), generator=generator)
    dx = torch.randint(0, cell_w, (count,), generator=generator)
    rows = (dy[:, None] + torch.arange(height)[None]).view(count, 1, height, 1)
    cols = (dx[:, None] + torch.arange(width)[None]).view(count, 1, 1, width)
    index_rows = rows.expand(count, 1, height, up.shape[-1])
    up = up.gather(2, index_rows)
    return up.gather(3, cols.expand(count, 1, height, width))


def rise_saliency(
    model: nn.Module,
    images: torch.Tensor,
    targets: Targets,
    num_masks: int = RISE_NUM_MASKS,
    cells: int = RISE_CELLS,
    keep: float = RISE_KEEP,
    batch_size: int = 100,
    seed: int = 0,
    score: str = "softmax",
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """RISE: ``s_c = (1 / (N·p)) Σ_i f_c(x ⊙ M_i) · M_i`` over ``N = num_masks`` masks → N×H×W.

    ``progress``: told ``(masks done, num_masks)`` after each batch of masks (every image
    scored through them), for a job's progress line.

    ``f_c`` is the class probability: ``score="softmax"`` (single-label classifiers, the RISE
    paper) or ``"sigmoid"`` (multi-label ones, as TorchRay's VOC/COCO models). The same seeded
    masks serve every image, so the result does not depend on the batching; identical images
    (several classes of one image) are evaluated once.
    """
    if score not in ("softmax", "sigmoid"):
        raise ValueError(f"score must be 'softmax' or 'sigmoid'; got {score!r}")
    if isinstance(num_masks, bool) or not isinstance(num_masks, int) or num_masks < 1:
        raise ValueError(f"num_masks must be a positive integer; got {num_masks!r}")
    if not 0 < keep < 1:
        raise ValueError(f"keep must be in (0, 1); got {keep!r}")
    _check(images)
    target = _targets(targets, len(images))
    unique, inverse = torch.unique(images.flatten(1), dim=0, return_inverse=True)
    unique = unique.view(-1, *images.shape[1:])
    size = tuple(images.shape[-2:])
    generator = torch.Generator().manual_seed(seed)
    scores_fn = _Scores(model)
    with frozen(model), torch.no_grad():
        device = _device(model, images)
        sums: torch.Tensor | None = None
        for start in range(0, num_masks, batch_size):
            masks = rise_masks(min(batch_size, num_masks - start), size, cells, keep, generator)
            masks = masks.to(device)
            flat = masks.flatten(1)  # B×HW
            for u, image in enumerate(unique.to(device)):
                out = scores_fn(image[None] * masks)
                prob = out.softmax(1) if score == "softmax" else out.sigmoid()
                part = prob.T @ flat  # classes×HW
                if sums is None:
                    sums = torch.zeros(len(unique), *part.shape, device=device)
                sums[u] += part
            if progress is not None:
                progress(start + len(masks), num_masks)
    sal = (sums / (num_masks * keep)).view(len(unique), -1, *size).cpu()
    return torch.stack([sal[int(inverse[i]), t] for i, t in enumerate(target)])


# --- excitation backprop ---------------------------------------------------------------------


class _MWPAffine(torch.autograd.Function):
    """Forward: the layer's own output. Backward, the MWP rule for ``y = f(x, W)``:

    ``p_in = x ⊙ f*(x, W⁺, p_out ⊘ f(x, W⁺))`` with ``W⁺ = max(W, 0)``, no bias, ``f*`` the
    layer's vector-Jacobian product — i.e. ``p_j = Σ_i x_j w⁺_ij / (Σ_k x_k w⁺_ik) · p_i``.
    """

    @staticmethod
    def forward(ctx, x, y, positive_op):
        ctx.save_for_backward(x)
        ctx.positive_op = positive_op
        return y.clone()

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            x_ = x.detach().requires_grad_(True)
            z = ctx.positive_op(x_)
            (g,) = torch.autograd.grad(z, x_, grad / (z + MWP_EPS))
        return g * x, None, None


class _PassThrough(torch.autograd.Function):
    """Forward: the layer's output; backward: the signal unchanged (batch norm under MWP)."""

    @staticmethod
    def forward(ctx, x, y):
        return y.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class _MWPSum(torch.autograd.Function):
    """``a + b`` (a residual connection); backward splits ``p`` in proportion: ``p·a/(a+b)``."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a + b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        total = a + b + MWP_EPS
        return grad * a / total, grad * b / total


def _positive_op(module: nn.Module, negate: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        weight = (-module.weight if negate else module.weight).detach().clamp(min=0)
        return lambda x: module._conv_forward(x, weight, None)
    if isinstance(module, nn.Linear):
        weight = (-module.weight if negate else module.weight).detach().clamp(min=0)
        return lambda x: F.linear(x, weight)
    # Average pooling: its weights are positive already. ``forward`` skips the module's hooks
    # (calling the module would wrap the recomputation in another MWP node, without end).
    return module.forward


def _residual_forward(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision BasicBlock/Bottleneck forward with the MWP split at the residual sum."""
    identity = x if block.downsample is None else block.downsample(x)
    out = block.relu(block.bn1(block.conv1(x)))
    out = block.bn2(block.conv2(out))
    if hasattr(block, "conv3"):
        out = block.bn3(block.conv3(block.relu(out)))
    return block.relu(_MWPSum.apply(out, identity))


@contextmanager
def excitation_backprop_rules(model: nn.Module, negate: nn.Module | None = None) -> Iterator[None]:
    """Inside, ``backward`` follows the MWP rules of Zhang et al. (ECCV 2016, eq. 5–7).

    Conv and linear layers: :class:`_MWPAffine` (``negate``: use ``(−W)⁺``, cMWP's dual unit);
    average pooling: the same rule with its positive weights; batch norm: pass-through (as
    TorchRay); ReLU, max pooling, dropout: their ordinary backward (winner-take-all for max
    pooling); torchvision residual blocks split the signal over the two summands in proportion.
    Hooks and patched forwards are removed on exit.
    """
    from torchvision.models.resnet import BasicBlock, Bottleneck

    affine = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    pools = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d)
    pools += (nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
    norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
    handles, patched = [], []
    try:
        for module in model.modules():
            if isinstance(module, affine + pools):
                op = _positive_op(module, module is negate)

                def hook(mod, args, out, op=op):
                    return _MWPAffine.apply(args[0], out, op)

                handles.append(module.register_forward_hook(hook))
            elif isinstance(module, norms):
                handles.append(
                    module.register_forward_hook(lambda m, a, o: _PassThrough.apply(a[0], o))
                )
            elif isinstance(module, (BasicBlock, Bottleneck)):
                patched.append((module, module.__dict__.get("forward")))
                module.forward = types.MethodType(_residual_forward, module)
        yield
    finally:
        for handle in handles:
            handle.remove()
        for module, previous in patched:
            if previous is None:
                del module.forward
            else:
                module.forward = previous


@contextmanager
def _capture(module: nn.Module, leaf: bool, store: list) -> Iterator[None]:
    """Keep ``module``'s output in ``store``; ``leaf``: as a new graph leaf (nothing below it)."""

    def hook(mod, args, out):
        if store:
            raise ValueError(
                "the excitation layer runs more than once per forward; choose a module that "
                "runs once (e.g. its parent block)"
            )
        if leaf:
            start = out.detach().requires_grad_(True)
            store.append(start)
            return start.clone()  # a non-leaf, so that in-place ReLUs after it are allowed
        store.append(out)
        return None

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _one_hot(out: torch.Tensor, target: list[int]) -> torch.Tensor:
    signal = torch.zeros_like(out)
    signal[torch.arange(len(target)), torch.tensor(target)] = 1.0
    return signal


def _mwp_at(
    model: nn.Module, x: torch.Tensor, target: list[int], layers: LayerChoice, contrastive: bool
) -> torch.Tensor:
    modules = dict(model.named_modules())
    saliency_layer, contrast_layer = modules[layers.saliency], modules[layers.contrast]
    classifier = modules[layers.classifier]
    scores = _Scores(model)
    if not contrastive:
        start: list = []
        with excitation_backprop_rules(model), _capture(saliency_layer, True, start):
            out = scores(x)
            (p,) = torch.autograd.grad(out, start[0], _one_hot(out, target))
        return p.sum(1)
    # cMWP: the dual unit's excitation (classifier weights negated) is subtracted at the
    # contrast layer, then the difference is propagated down to the saliency layer.
    dual: list = []
    with excitation_backprop_rules(model, negate=classifier), _capture(contrast_layer, False, dual):
        with _capture(saliency_layer, True, []):
            out = scores(x)
            (p_dual,) = torch.autograd.grad(out, dual[0], _one_hot(out, target))
    start, top = [], []
    with excitation_backprop_rules(model), _capture(saliency_layer, True, start):
        with _capture(contrast_layer, False, top):
            out = scores(x)
            (p_top,) = torch.autograd.grad(out, top[0], _one_hot(out, target), retain_graph=True)
            (p,) = torch.autograd.grad(top[0], start[0], p_top - p_dual)
    return p.sum(1).clamp(min=0)


def _excitation(
    model: nn.Module,
    images: torch.Tensor,
    targets: Targets,
    contrastive: bool,
    layers: dict[str, str | None],
) -> torch.Tensor:
    _check(images)
    target = _targets(targets, len(images))
    with frozen(model):
        x = images.detach().to(_device(model, images))
        chosen = resolve_layers(model, x, **layers)
        maps = _mwp_at(model, x, target, chosen, contrastive)
    maps = F.interpolate(
        maps[:, None].detach(), size=images.shape[-2:], mode="bilinear", align_corners=False
    )
    return maps[:, 0].cpu()


def excitation_backprop_saliency(
    model: nn.Module, images: torch.Tensor, targets: Targets, layer: str | None = None
) -> torch.Tensor:
    """Excitation backprop (MWP): ``s_u = Σ_c P(a_{cu})`` at ``layer``, upsampled → N×H×W.

    The top signal is one-hot on the target; ``P`` is propagated down with
    :func:`excitation_backprop_rules` to the output ``a`` of ``layer`` (default: see
    :func:`resolve_layers`; VGG16 pool4, ResNet50 layer3, as TorchRay's benchmark).
    """
    return _excitation(model, images, targets, False, {"saliency": layer})


def contrastive_excitation_backprop_saliency(
    model: nn.Module,
    images: torch.Tensor,
    targets: Targets,
    layer: str | None = None,
    contrast_layer: str | None = None,
    classifier_layer: str | None = None,
) -> torch.Tensor:
    """Contrastive MWP: ``s_u = max(0, Σ_c P_{t − t̄}(a_{cu}))`` → N×H×W.

    ``P_{t − t̄}``: at ``contrast_layer`` the MWP of the target minus the MWP of its dual unit
    t̄ (the classifier's weights negated), propagated down to ``layer`` with the MWP rules.
    """
    names = {"saliency": layer, "contrast": contrast_layer, "classifier": classifier_layer}
    return _excitation(model, images, targets, True, names)


# --- center and extremal perturbations --------------------------------------------------------


def center_saliency(model: nn.Module, images: torch.Tensor, targets: Targets) -> torch.Tensor:
    """The centre-point baseline: ``s_{yx} = −((y + ½ − H/2)² + (x + ½ − W/2)²)`` → N×H×W."""
    _check(images)
    _targets(targets, len(images))
    height, width = images.shape[-2:]
    ys = torch.arange(height, dtype=torch.float32) + 0.5 - height / 2
    xs = torch.arange(width, dtype=torch.float32) + 0.5 - width / 2
    sal = -(ys[:, None] ** 2 + xs[None, :] ** 2)
    return sal.expand(len(images), height, width).clone()


def extremal_perturbation_masks(
    model: nn.Module,
    images: torch.Tensor,
    targets: Targets,
    areas: Sequence[float] = VOC_AREAS,
    **options: Any,
) -> torch.Tensor:
    """Extremal perturbations through the API: the masks ``m_{a_k}`` → N×K×H×W.

    ``options`` go to :func:`~lightning_extremal.extremal_perturbation` (``max_iter``,
    ``reward``, ``smoothing``, …; ``progress`` defaults to False here).
    """
    return extremal_perturbation_run(model, images, targets, areas, **options).masks.cpu()


def extremal_perturbation_run(
    model: nn.Module,
    images: torch.Tensor,
    targets: Targets,
    areas: Sequence[float] = VOC_AREAS,
    **options: Any,
) -> ExtremalResult:
    """:func:`extremal_perturbation_masks` with the whole result: the masks and whether each
    converged (``converged`` N×K), for scores that say how many masks were unconverged."""
    _check(images)
    target = _targets(targets, len(images))
    options.setdefault("progress", False)
    return extremal_perturbation(model, images, [[t] for t in target], list(areas), **options)


def extremal_perturbation_saliency(
    model: nn.Module,
    images: torch.Tensor,
    targets: Targets,
    areas: Sequence[float] = VOC_AREAS,
    **options: Any,
) -> torch.Tensor:
    """The pointing map of extremal perturbations: ``s = Σ_k m_{a_k}`` over ``areas`` → N×H×W
    (:func:`extremal_perturbation_masks`)."""
    return extremal_perturbation_masks(model, images, targets, areas, **options).sum(1)


def extremal_perturbation_uniform_saliency(
    model: nn.Module,
    images: torch.Tensor,
    targets: Targets,
    areas: Sequence[float] = VOC_AREAS,
    **options: Any,
) -> torch.Tensor:
    """:func:`extremal_perturbation_saliency` from the uniform start (``warm_start="none"``):
    what the optimisation finds without the default's Grad-CAM warm start."""
    options["warm_start"] = "none"
    return extremal_perturbation_saliency(model, images, targets, areas, **options)


def meaningful_perturbation_saliency(
    model: nn.Module, images: torch.Tensor, targets: Targets, **options: Any
) -> torch.Tensor:
    """Meaningful perturbations (Fong & Vedaldi, ICCV 2017) through the API: the deletion mask
    ``1 − m`` of the first λ₁ (default: the paper's) → N×H×W.

    ``options`` go to :func:`~lightning_extremal.meaningful_perturbation` (``max_iter``,
    ``l1_coeffs``, ``tv_coeff``, …; ``progress`` defaults to False here).
    """
    _check(images)
    target = _targets(targets, len(images))
    options.setdefault("progress", False)
    result = meaningful_perturbation(model, images, [[t] for t in target], **options)
    return result.masks[:, 0].cpu()


# --- registry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """A baseline: its table label, its saliency function and how the pointing game smooths it.

    ``pointing``: ``"backprop"`` (σ = 0.02·max(H, W), replicate), ``"extremal"`` (σ =
    0.09·min(H, W), zeros) or ``"plain"`` (no smoothing) — TorchRay's benchmark settings.
    Meaningful perturbations get ``"extremal"`` too (our choice): their deletion masks have
    plateaus of 1 like summed extremal masks, whose first pixel a plain argmax would pick.
    """

    label: str
    fn: Callable[..., torch.Tensor]
    pointing: str


METHODS: dict[str, Method] = {
    "center": Method("Center", center_saliency, "plain"),
    "gradient": Method("Grad", gradient_saliency, "backprop"),
    "deconvnet": Method("DConv", deconvnet_saliency, "backprop"),
    "guided_backprop": Method("Guided", guided_backprop_saliency, "backprop"),
    "mwp": Method("MWP", excitation_backprop_saliency, "plain"),
    "cmwp": Method("cMWP", contrastive_excitation_backprop_saliency, "plain"),
    "rise": Method("RISE", rise_saliency, "plain"),
    "grad_cam": Method("Grad-CAM", grad_cam_saliency, "plain"),
    "extremal_perturbation": Method(
        "Extremal perturbations", extremal_perturbation_saliency, "extremal"
    ),
    "extremal_perturbation_uniform": Method(
        "Extremal perturbations, uniform start", extremal_perturbation_uniform_saliency, "extremal"
    ),
    "meaningful_perturbation": Method(
        "Meaningful perturbations", meaningful_perturbation_saliency, "extremal"
    ),
}
#: Short names accepted on the command line.
ALIASES = {"ep": "extremal_perturbation", "grad": "gradient", "guided": "guided_backprop"}
ALIASES |= {"excitation_backprop": "mwp", "contrastive_excitation_backprop": "cmwp"}
ALIASES |= {"gradcam": "grad_cam", "dconv": "deconvnet", "mp": "meaningful_perturbation"}
ALIASES |= {"ep_uniform": "extremal_perturbation_uniform"}


def method_name(name: str) -> str:
    """The canonical name of a method (aliases resolved); ``ValueError`` names the valid ones."""
    canonical = ALIASES.get(name, name)
    if canonical not in METHODS:
        raise ValueError(
            f"unknown method {name!r}; valid: {', '.join(METHODS)} (aliases: {', '.join(ALIASES)})"
        )
    return canonical


def saliency(
    method: str, model: nn.Module, images: torch.Tensor, targets: Targets, **options: Any
) -> torch.Tensor:
    """``METHODS[method].fn(model, images, targets, **options)`` → N×H×W (float, finite)."""
    return METHODS[method_name(method)].fn(model, images, targets, **options)
