"""Reach inside a classifier by module name: read or replace one layer's activation through
forward hooks that are always removed, also when the forward pass fails."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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


@torch.no_grad()
def default_layer(model: nn.Module, images: torch.Tensor) -> str:
    """The last module to finish whose output has a spatial grid of more than one cell, read
    as :func:`~.layer_layout.resolve_layout` reads it (layouts it cannot tell apart are
    passed over).

    For a CNN this is its last convolutional stage (``layer4`` of a ResNet, ``features`` of
    the demo network), for a ViT its encoder's output tokens (``encoder``), for a Swin its
    last stage: the deepest layer that still says where the evidence is.
    """
    finished: list[str] = []
    handles = []
    size = tuple(images.shape[-2:])
    for name, module in model.named_modules():
        if not name:
            continue

        def record(module, inputs, output, name=name):
            if isinstance(output, torch.Tensor) and output.dim() in (3, 4):
                try:
                    layout = resolve_layout(output.shape, size, name, model=model)
                except ValueError:
                    return
                if layout.grid is not None and layout.grid[0] * layout.grid[1] > 1:
                    finished.append(name)

        handles.append(module.register_forward_hook(record))
    try:
        with frozen(model):
            model(images[:1])
    finally:
        for handle in handles:
            handle.remove()
    if not finished:
        raise ValueError(
            "the model has no layer with a spatial grid (N×C×H×W, N×H×W×C or N×T×C tokens); "
            "name one with layer=…"
        )
    return finished[-1]
