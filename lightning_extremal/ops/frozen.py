"""Borrow the caller's classifier and give it back exactly as it was given."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
)


def hook_counts(model: torch.nn.Module) -> dict[str, int]:
    """Number of hooks of every kind on every submodule (to check none are left behind)."""
    return {
        f"{name}.{kind}": len(getattr(module, kind, {}))
        for name, module in model.named_modules()
        for kind in _HOOK_DICTS
    }


@contextmanager
def frozen(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Put ``model`` in eval mode without parameter gradients; restore everything on exit.

    Restored, also when the body raises or is interrupted: each submodule's ``training``
    flag, each parameter's ``requires_grad`` and memory format (a run may switch the
    classifier to channels-last), each parameter's and buffer's dtype (``precision="64-true"``
    casts the module), and the device of the parameters (Lightning moves the module to the
    accelerator and back to the CPU at teardown). Hooks added inside the body are removed.
    """
    modes = {m: m.training for m in model.modules()}
    dtypes = _dtypes(model)
    grads = {p: p.requires_grad for p in model.parameters()}
    formats = {p: _memory_format(p) for p in model.parameters() if p.dim() == 4}
    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else None
    hooks = {
        (module, kind): dict(getattr(module, kind))
        for module in model.modules()
        for kind in _HOOK_DICTS
        if hasattr(module, kind)
    }
    model.eval()
    model.requires_grad_(False)
    try:
        yield model
    finally:
        for module, training in modes.items():
            module.training = training
        for param, flag in grads.items():
            param.requires_grad_(flag)
        for param, memory_format in formats.items():
            if _memory_format(param) != memory_format:
                param.data = param.data.contiguous(memory_format=memory_format)
        for (module, kind), saved in hooks.items():
            current = getattr(module, kind)
            for key in [k for k in current if k not in saved]:
                del current[key]
        if device is not None and first.device != device:
            model.to(device)
        _restore_dtypes(model, dtypes)


def _dtypes(model: torch.nn.Module) -> dict[tuple[torch.nn.Module, str, str], torch.dtype]:
    """The dtype of every parameter and buffer, by (module, "_parameters"/"_buffers", name)."""
    return {
        (module, kind, name): tensor.dtype
        for module in model.modules()
        for kind in ("_parameters", "_buffers")
        for name, tensor in getattr(module, kind).items()
        if tensor is not None
    }


def _restore_dtypes(model: torch.nn.Module, dtypes: dict) -> None:
    for (module, kind, name), dtype in dtypes.items():
        tensor = getattr(module, kind).get(name)
        if tensor is not None and tensor.dtype != dtype:
            if kind == "_parameters":
                tensor.data = tensor.data.to(dtype)
            else:
                module._buffers[name] = tensor.to(dtype)


def _memory_format(tensor: torch.Tensor) -> torch.memory_format:
    """channels_last for a 4-D tensor stored that way (and not also contiguous), else
    contiguous_format."""
    if not tensor.is_contiguous() and tensor.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format
