"""The input-mask module (modules/image_masks)."""

from __future__ import annotations

import torch


def test_compile_auto_compiles_long_runs_only() -> None:
    """``compile="auto"`` compiles when ranked pixels × taps × steps of one mask reach
    ``AUTO_COMPILE_WORK`` (whatever the number of masks); True/False are obeyed."""
    from lightning_extremal.config import MethodConfig
    from lightning_extremal.modules.image_masks import ExtremalPerturbationModule
    from lightning_extremal.ops.masks import AUTO_COMPILE_WORK

    def module(size: int, steps: int, compiled="auto") -> ExtremalPerturbationModule:
        m = ExtremalPerturbationModule(
            torch.nn.Identity(),
            torch.zeros(4, 3, size, size),
            torch.zeros(4, dtype=torch.long),
            torch.arange(4),
            MethodConfig(areas=[0.05, 0.1, 0.2, 0.4], max_iter=steps),
        )
        m.compiled = compiled
        return m

    work = (224 + 2 * 21) ** 2 * 81  # one mask at 224 px, one step
    assert work * 800 >= AUTO_COMPILE_WORK > work * 12
    assert module(224, 800).use_compiled()  # the paper's setting: compiled
    assert not module(224, 12).use_compiled()  # a short look: eager
    assert not module(64, 100).use_compiled()  # small images, few steps: eager
    assert not module(128, 20).use_compiled()  # a 20-step look at the demo: eager
    assert module(128, 50).use_compiled()  # preset=quick on the demo (8 images × 2 areas)
    assert module(128, 800).use_compiled()  # the demo at the reference's 800 steps
    assert module(32, 5, compiled=True).use_compiled()
    assert not module(224, 800, compiled=False).use_compiled()
