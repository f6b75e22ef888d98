"""Seconds per EP iteration of an installed lightning-extremal tree (to compare versions).

Times ``extremal_perturbation`` on resnet18 (random weights), 8 images × 4 areas at 224 px,
compiled kernels, as the difference of a 12- and a 4-iteration run divided by 8. To time an
older commit, install it apart and point the script at it::

  git worktree add /tmp/old REV && pip install --no-deps --target /tmp/oldsite /tmp/old
  OMP_NUM_THREADS=1 python benchmarks/per_iteration.py /tmp/oldsite [key=value ...]

With no folder it times the package this interpreter imports.
"""

from __future__ import annotations

import sys
import time
import warnings


def main() -> None:
    args = sys.argv[1:]
    if args and "=" not in args[0]:
        sys.path.insert(0, args.pop(0))
        # an editable install's finder would still map the package to the working tree
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    import torch
    import torchvision

    import lightning_extremal
    from lightning_extremal import extremal_perturbation

    warnings.filterwarnings("ignore")
    options = {}
    for arg in args:
        key, value = arg.split("=", 1)
        options[key] = float(value) if key in ("lr", "lambda0", "lambda_final") else value
    model = torchvision.models.resnet18().eval().requires_grad_(False)
    images = torch.rand(8, 3, 224, 224)
    areas = [0.025, 0.05, 0.1, 0.2]

    def seconds(iters: int) -> float:
        start = time.perf_counter()
        extremal_perturbation(
            model, images, list(range(8)), areas, max_iter=iters, progress=False,
            compile=True, **options,
        )  # fmt: skip
        return time.perf_counter() - start

    seconds(2)  # warm-up (compilation)
    low, high = seconds(4), seconds(12)
    print(f"{lightning_extremal.__file__}: {(high - low) / 8:.2f} s per iteration {options}")


if __name__ == "__main__":
    main()
