"""Reach inside a classifier by module name: read or replace one layer's activation through
forward hooks that are always removed, also when the forward pass fails."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from .frozen import frozen
from .layer_layout import resolve_layout

#: How many of the nearest valid names an unknown-layer error lists.
NEAREST_NAMES = 5


class _StopForward(Exception):
    """Raised by a capturing hook to end the forward pass at the layer (the rest is unused)."""

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__("forward stopped at the captured layer")
        self.output = output


def layer_names(model: nn.Module) -> list[str]:
    """Every submodule path of ``model`` (``named_modules()`` without the model itself)."""
    return [name for name, _ in model.named_modules() if name]


def nearest_layer_names(model: nn.Module, name: str, count: int = NEAREST_NAMES) -> list[str]:
    """The valid layer names closest to ``name`` (difflib ratio), best first."""
    names = layer_names(model)
    close = difflib.get_close_matches(name, names, n=count, cutoff=0.0)
    return close or names[:count]


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (e.g. ``layer3``, ``features.28``).

    Raises ``ValueError`` naming the nearest valid names when there is no such module.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"layer must be a non-empty module name; got {name!r}")
    modules = dict(model.named_modules())
    if name not in modules:
        nearest = nearest_layer_names(model, name)
        raise ValueError(
            f"the model has no layer {name!r}; nearest valid names: {', '.join(nearest)} "
            f"(any name of model.named_modules() works)"
        )
    return modules[name]


@contextmanager
def forward_hook(
    model: nn.Module, name: str, hook: Callable[[nn.Module, tuple, object], object]
) -> Iterator[nn.Module]:
    """Register ``hook`` as a forward hook on layer ``name`` for the body; always removed."""
    layer = get_layer(model, name)
    handle = layer.register_forward_hook(hook)
    try:
        yield layer
    finally:
        handle.remove()


def _check_tensor(name: str, output: object) -> torch.Tensor:
    if not isinstance(output, torch.Tensor):
        raise ValueError(
            f"layer {name!r} returns a {type(output).__name__}, not a tensor; choose a module "
            "whose output is one activation tensor"
        )
    return output


def layer_output(model: nn.Module, name: str, inputs: torch.Tensor) -> torch.Tensor:
    """The output of layer ``name`` for ``inputs``, differentiable with respect to them.

    The forward pass stops at the layer: the rest of the network is not run. If the layer
    runs several times per forward pass, its first call is taken.
    """

    def capture(module, args, output):
        raise _StopForward(_check_tensor(name, output))

    with forward_hook(model, name, capture):
        try:
            model(inputs)
        except _StopForward as stop:
            return stop.output
    raise ValueError(f"layer {name!r} did not run in the model's forward pass")


@torch.no_grad()
def layer_activation(model: nn.Module, name: str, images: torch.Tensor) -> torch.Tensor:
    """``Φ_L(x)``: a copy of layer ``name``'s output for ``images`` (N×C×H×W for a conv layer).

    The model runs in eval mode and is given back as it was (:func:`~lightning_extremal.ops.frozen.frozen`). The
    output is cloned, so in-place operations after the layer (``ReLU(inplace=True)``) cannot
    change it.
    """
    with frozen(model):
        return layer_output(model, name, images).detach().clone()


@torch.no_grad()
def layer_calls(model: nn.Module, name: str, inputs: torch.Tensor) -> int:
    """How many times layer ``name`` runs in one forward pass of ``inputs`` (model in eval)."""
    calls = []
    with frozen(model), forward_hook(model, name, lambda module, args, output: calls.append(1)):
        model(inputs)
    return len(calls)


@contextmanager
def replaced_output(model: nn.Module, name: str, replacement: torch.Tensor) -> Iterator[None]:
    """For the body, layer ``name`` returns ``replacement`` instead of its own output.

    The replacement must have the shape of the layer's output. A layer that runs more than
    once per forward pass (a shared ``ReLU`` module) is an error: which call to replace
    would be ambiguous. Run one forward pass per body.
    """
    calls = []

    def replace(module, inputs, output):
        output = _check_tensor(name, output)
        if calls:
            raise ValueError(
                f"layer {name!r} runs more than once per forward pass (a shared module); "
                "choose a module that runs once, e.g. its parent block"
            )
        calls.append(1)
        if output.shape != replacement.shape:
            raise ValueError(
                f"the perturbed activation has shape {tuple(replacement.shape)} but layer "
                f"{name!r} returns {tuple(output.shape)}"
            )
        return replacement.to(output.dtype)

    with forward_hook(model, name, replace):
        yield


@dataclass
class LayerCall:
    """One module call of a traced forward pass: the module's name, the module and its
    output's shape (None when the output is not a tensor)."""

    name: str
    module: nn.Module
    shape: tuple[int, ...] | None


@torch.no_grad()
def trace_calls(
    model: nn.Module, images: torch.Tensor, leaves_only: bool = False
) -> list[LayerCall]:
    """The named modules of ``model`` (only those without children if ``leaves_only``) in
    the order their forward returned, for one image of ``images`` — a module that runs
    several times (a shared activation module) appears once per call. The model runs in eval
    mode and is given back as it was."""
    calls: list[LayerCall] = []
    handles = []
    for name, module in model.named_modules():
        if not name or (leaves_only and next(module.children(), None) is not None):
            continue

        def record(module, args, output, name=name):
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
            calls.append(LayerCall(name, module, shape))

        handles.append(module.register_forward_hook(record))
    try:
        with frozen(model):
            model(images[:1])
    finally:
        for handle in handles:
            handle.remove()
    return calls


def called_once(name: str, calls: list[LayerCall], modules: dict[str, nn.Module]) -> str:
    """``name``, or its parent when the module runs several times in ``calls`` (a shared ReLU):
    a hook on a module that runs more than once sees every call."""
    if sum(c.name == name for c in calls) <= 1:
        return name
    parent = name.rpartition(".")[0]
    return parent if parent in modules else name


def _has_grid(model: nn.Module, call: LayerCall, size: tuple[int, int]) -> bool:
    """Whether the call's output is a spatial map of more than one cell, read as
    :func:`~.layer_layout.resolve_layout` reads it (layouts it cannot tell apart: no)."""
    if call.shape is None or len(call.shape) not in (3, 4):
        return False
    try:
        layout = resolve_layout(call.shape, size, call.name, model=model)
    except ValueError:
        return False
    return layout.grid is not None and layout.grid[0] * layout.grid[1] > 1


def default_layer(model: nn.Module, images: torch.Tensor) -> str:
    """The last module to finish, among those that run exactly once per forward pass, whose
    output has a spatial grid of more than one cell (:func:`_has_grid`) on which the scores'
    gradient is non-zero in more than one cell (:func:`_spatially_reached`).

    For a CNN this is its last convolutional stage (``layer4`` of a ResNet, ``features`` of
    the demo network, ``_bn1`` of EfficientNet-Lite, whose last activation module ``_swish``
    also runs at the stem), for a Swin its last stage, for a ViT the input norm of its last
    encoder block (``ln_1``: after it, only the class token reaches the scores, so a Grad-CAM
    there is empty): the deepest layer that still says where the evidence is. A module that
    runs several times (a shared activation) is passed over: a hook on it sees every call.
    """
    calls = trace_calls(model, images)
    counts = Counter(call.name for call in calls)
    size = tuple(images.shape[-2:])
    spatial = [call for call in calls if _has_grid(model, call, size)]
    once = [call.name for call in spatial if counts[call.name] == 1]
    if not once and spatial:
        raise ValueError(
            f"every layer with a spatial grid runs more than once per forward pass (e.g. "
            f"{spatial[-1].name!r}, {counts[spatial[-1].name]} times); name one that runs once "
            "with layer=…"
        )
    if not once:
        raise ValueError(
            "the model has no layer with a spatial grid (N×C×H×W, N×H×W×C or N×T×C tokens); "
            "name one with layer=…"
        )
    reached = _spatially_reached(model, images, once)
    return next((name for name in reversed(once) if name in reached), once[-1])


def _spatially_reached(model: nn.Module, images: torch.Tensor, names: list[str]) -> set[str]:
    """Those of ``names`` (modules that run once, with a spatial grid) where the gradient of
    the summed scores of one image is non-zero in more than one grid cell. One forward and
    one backward pass; each hook passes on a copy, so later in-place layers leave the kept
    output as it was."""
    kept: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:

        def keep(module, args, output, name=name):
            kept[name] = output
            return output.clone()

        handles.append(get_layer(model, name).register_forward_hook(keep))
    try:
        with frozen(model), torch.enable_grad():
            scores = model(images[:1].detach().clone().requires_grad_(True))
            inputs = [kept[n] for n in names if n in kept and kept[n].requires_grad]
            grads = torch.autograd.grad(scores.float().sum(), inputs, allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
    size = tuple(images.shape[-2:])
    reached = set()
    for output, grad in zip(inputs, grads, strict=True):
        name = next(n for n in names if kept.get(n) is output)
        if grad is None:
            continue
        layout = resolve_layout(grad.shape, size, name, model=model)
        cells, _ = layout.split_grid(grad.detach().float())
        if int((cells.abs().sum(1) > 0).sum()) > 1:
            reached.add(name)
    return reached
