"""``torch.compile`` with a clean fall-back: the same function, eagerly, where compiling fails."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch


class Compiled:
    """``fn`` compiled on first use; if compiling or running the compiled code raises (no C++
    compiler, unsupported platform…), one warning and ``fn`` itself from then on.
    ``available`` is False once it has fallen back.

    Shapes: the first call compiles for its exact shapes; the first call with other shapes
    compiles once more with those dimensions symbolic (``torch.compile``'s automatic dynamic
    shapes), and that kernel serves every later shape. With ``dynamic=False`` each new image
    size (VOC/COCO images differ in width) would recompile, and past dynamo's recompile limit
    (8) run eagerly, much slower. The dynamic kernels are as fast as the static ones
    (benchmarks/RESULTS.md)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.available = True
        self._compiled: Callable[..., Any] | None = None

    def __call__(self, *args: Any) -> Any:
        if self.available:
            try:
                if self._compiled is None:
                    self._compiled = torch.compile(self.fn, dynamic=None)
                return self._compiled(*args)
            except Exception as error:  # noqa: BLE001 - any compile failure means eager
                name = getattr(self.fn, "__name__", "function")
                warnings.warn(
                    f"torch.compile failed for {name} ({error}); using it eagerly", stacklevel=2
                )
                self.available = False
        return self.fn(*args)
