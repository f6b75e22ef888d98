"""Where one extremal-perturbation step spends its time: each part's forward + backward.

Times, for N images × K areas at 224 px (default 4 × 4 = 16 masks), the classifier's forward +
input-gradient backward (contiguous and channels-last) and, on the same masks, the smooth
max-convolution and the blur-pyramid blend (compiled and eager), the area loss (top-k, and the
full sort it replaced) and the per-step cost of the Lightning loop (a 16-px problem). Prints a
markdown table.

  python benchmarks/profile_step.py [--model resnet18] [--images 4] [--areas 4]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
import torchvision

from lightning_extremal import extremal_perturbation
from lightning_extremal.ops.area import area_loss, ones_count
from lightning_extremal.ops.masks import maxconv_kernel, param_grid_shape, smooth_max_mask
from lightning_extremal.ops.perturbation import (
    apply_pyramid,
    compiled_apply_pyramid,
    perturbation_pyramid,
)

AREAS = [0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]


def timed(fn, repeats: int = 3) -> float:
    """Milliseconds per call, after two warm-up calls (compilation happens there)."""
    fn()
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--areas", type=int, default=4)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    size, step, sigma, margin = 224, 7, 21.0, 21
    areas = AREAS[: args.areas]
    masks_n = args.images * len(areas)
    model = torchvision.models.get_model(args.model).eval().requires_grad_(False)
    images = torch.rand(args.images, 3, size, size)
    batch = images.repeat_interleave(len(areas), 0)

    def classifier(layout=torch.contiguous_format):
        def run():
            model.to(memory_format=layout)
            x = batch.contiguous(memory_format=layout).requires_grad_(True)
            model(x)[:, 0].sum().backward()

        return run

    kernel = maxconv_kernel(step, sigma)
    params = torch.rand(masks_n, 1, *param_grid_shape(size, size, step), requires_grad=True)

    def smooth_max(compiled: bool):
        def run():
            smooth_max_mask(params, kernel, (size, size), 20.0, margin, compiled).sum().backward()

        return run

    pyramid = perturbation_pyramid(images, "blur", 8, 20.0, "reflect")
    index = torch.arange(args.images).repeat_interleave(len(areas))
    visible = torch.rand(masks_n, 1, size, size, requires_grad=True)

    def blend(fn):
        def run():
            fn(pyramid, visible, index).sum().backward()

        return run

    padded = torch.rand(masks_n, 1, size + 2 * margin, size + 2 * margin, requires_grad=True)
    ones = ones_count(size * size, areas).repeat(args.images)

    def topk_loss():
        area_loss(padded, ones).sum().backward()

    reference = (
        torch.arange(padded[0].numel()).view(1, -1) >= padded[0].numel() - ones.view(-1, 1)
    ).float()

    def sort_loss():
        (padded.flatten(1).sort(1).values - reference).pow(2).mean(1).sum().backward()

    tiny = torch.nn.Sequential(
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 2)
    ).eval()
    small = torch.rand(1, 3, 16, 16)

    def loop(steps: int) -> float:
        start = time.perf_counter()
        extremal_perturbation(
            tiny, small, [0], [0.1], max_iter=steps, step=2, sigma=2.0, progress=False,
            compile=False,
        )  # fmt: skip
        return time.perf_counter() - start

    loop(5)
    per_step = (loop(250) - loop(50)) / 200 * 1e3
    print(
        f"# {args.model}, {args.images} images × {len(areas)} areas = {masks_n} masks at "
        f"{size} px (margin {margin}), {torch.get_num_threads()} threads; forward + backward"
    )
    print("| part of one step | ms |")
    print("|---|---|")
    rows = [
        (f"classifier forward + input backward ({args.model})", timed(classifier())),
        (
            f"classifier forward + input backward ({args.model}, channels-last)",
            timed(classifier(torch.channels_last)),
        ),
        ("smooth max-convolution, compiled", timed(smooth_max(True))),
        ("smooth max-convolution, eager", timed(smooth_max(False))),
        ("blur-pyramid blend, compiled", timed(blend(compiled_apply_pyramid))),
        ("blur-pyramid blend, eager", timed(blend(apply_pyramid))),
        ("area loss, top-k", timed(topk_loss)),
        ("area loss, full sort (replaced)", timed(sort_loss)),
        ("Lightning loop + optimiser + logging (16-px problem)", per_step),
    ]
    for name, ms in rows:
        print(f"| {name} | {ms:.0f} |", flush=True)


if __name__ == "__main__":
    main()
