"""Speed of lightning-extremal against the classifier's own cost and the reference (TorchRay).

Prints, in one process and side by side:
  1. the overhead ratio = time per EP iteration ÷ time of the classifier's forward +
     input-gradient backward on the same batch (N images × K areas at 224 px);
  2. masks per second vs the reference implementation at equal iterations;
  3. peak memory per mask: what a run adds at its peak to the memory in use before it (fresh
     process, after a warm-up run; CPU: resident set, CUDA: allocated memory), per mask.

Per-iteration times are differences of two runs with different iteration counts, so set-up
(the blur pyramid, Trainer start) cancels out. Usage:

  python benchmarks/speed.py [--device cpu|cuda] [--models resnet18 resnet50 vgg16]
                             [--images 4] [--areas 4] [--ref-images 8] [--precision 32-true]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
import warnings

import torch
import torchvision

AREAS = [0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def classifier_time(
    model, batch: torch.Tensor, device: str, repeats: int = 3, channels_last: bool = False
) -> float:
    """Seconds for one forward + input-gradient backward of ``batch`` (model and batch in
    channels-last memory format if asked; the model is converted back afterwards)."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    batch = batch.contiguous(memory_format=layout)

    def once():
        x = batch.clone().requires_grad_(True)
        model(x)[:, 0].sum().backward()

    once()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        once()
    _sync(device)
    model.to(memory_format=torch.contiguous_format)
    return (time.perf_counter() - start) / repeats


def ours_time(model, images, areas, iters, device, precision, **options) -> float:
    from lightning_extremal import extremal_perturbation

    _sync(device)
    start = time.perf_counter()
    extremal_perturbation(
        model,
        images,
        list(range(len(images))),
        areas,
        max_iter=iters,
        progress=False,
        accelerator="gpu" if device == "cuda" else "cpu",
        precision=precision,
        **options,
    )
    _sync(device)
    return time.perf_counter() - start


def ours_per_iteration(model, images, areas, device, precision, low=4, high=12, **options):
    ours_time(model, images, areas, 2, device, precision, **options)  # warm-up
    t_low = ours_time(model, images, areas, low, device, precision, **options)
    t_high = ours_time(model, images, areas, high, device, precision, **options)
    return (t_high - t_low) / (high - low)


def warm_start_seconds(model, images, areas, precision, run: dict, iters: int = 4) -> float:
    """The warm start's one-off cost: a short run with it minus the same run without."""
    times = {}
    for start in ("auto", "none", "auto", "none"):  # each twice, the first of each a warm-up
        times[start] = ours_time(model, images, areas, iters, "cpu", precision, **run,
                                 warm_start=start)  # fmt: skip
    return max(0.0, times["auto"] - times["none"])


def reference_per_iteration(model, images, areas, low=4, high=12) -> float | None:
    """TorchRay: one image per call, all areas of that image batched."""
    try:
        from torchray.attribution.extremal_perturbation import extremal_perturbation
    except ImportError:
        return None

    def run(iters):
        start = time.perf_counter()
        for i in range(len(images)):
            extremal_perturbation(model, images[i : i + 1], i, areas=areas, max_iter=iters)
        return time.perf_counter() - start

    run(2)
    return (run(high) - run(low)) / (high - low)


def preset_method(name: str | None) -> dict:
    """The method options of ``configs/preset/NAME.yaml`` over the defaults (None: the
    defaults), without the areas (the benchmark sets its own)."""
    from dataclasses import asdict

    from lightning_extremal.config import compose

    method = asdict(compose([f"preset={name}"] if name else []).method)
    return {k: v for k, v in method.items() if k not in ("areas", "kind", "layer")}


def peak_memory_per_mask(name: str, images: int, areas: int, device: str, compile) -> float:
    """MiB per mask that a 3-step run adds at its peak, in a fresh process, after a warm-up run
    of the same shapes (so one-off compilation does not count). CPU: the resident set's peak
    (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``) minus the resident set before
    the run; CUDA: ``max_memory_allocated`` minus the memory allocated before the run."""
    code = f"""
import json, torch, torchvision
from lightning_extremal import extremal_perturbation
dev = "{device}"
m = torchvision.models.{name}().eval().to(dev)
x = torch.rand({images}, 3, 224, 224, device=dev)
def run():
    extremal_perturbation(m, x, list(range({images})), {AREAS[:areas]}, max_iter=3,
                          progress=False, accelerator="gpu" if dev == "cuda" else "cpu",
                          compile={compile!r})
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
run()
if dev == "cuda":
    torch.cuda.synchronize(); base = torch.cuda.memory_allocated() / 2**20
    torch.cuda.reset_peak_memory_stats(); run(); torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**20
else:
    open("/proc/self/clear_refs", "w").write("5")  # reset the peak resident set
    base = status("VmRSS:"); run(); peak = status("VmHWM:")
print(json.dumps((peak - base) / ({images} * {areas})))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--models", nargs="+", default=["resnet18", "resnet50", "vgg16"])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--areas", type=int, default=4)
    parser.add_argument(
        "--ref-images", type=int, default=8, help="images for the masks/s comparison"
    )
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-ratio", action="store_true", help="skip the overhead-ratio table")
    parser.add_argument(
        "--compile",
        default="true",
        choices=["true", "false", "auto"],
        help="torch.compile the smooth max (default true: what compile=auto picks for any "
        "800-step run of these sizes; the timed runs here are only 4–12 steps long)",
    )
    parser.add_argument(
        "--channels-last",
        default="auto",
        choices=["true", "false", "auto"],
        help="trainer.channels_last of the timed runs (default auto, the product's default)",
    )
    args = parser.parse_args()
    args.compile = {"true": True, "false": False}.get(args.compile, args.compile)
    cl = {"true": True, "false": False}.get(args.channels_last, args.channels_last)
    run = dict(compile=args.compile, channels_last=cl)
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    areas = AREAS[: args.areas]
    print(
        f"# machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, device {args.device}, precision {args.precision}, "
        f"compile {args.compile}, channels_last {cl}"
    )
    print(f"# batch: {args.images} images × {len(areas)} areas at 224 px, random weights")
    print(
        "# classifier: its forward + input-gradient backward on the same batch, contiguous and "
        "channels-last; the ratio divides by the faster of the two (the classifier's own best)"
    )
    print(
        "| model | EP ms/iter | classifier ms (contiguous) | classifier ms (channels-last) "
        "| overhead ratio |"
    )
    print("|---|---|---|---|---|")
    for name in [] if args.no_ratio else args.models:
        model = torchvision.models.get_model(name).eval().requires_grad_(False).to(args.device)
        images = torch.rand(args.images, 3, 224, 224, device=args.device)
        ep = ours_per_iteration(model, images, areas, args.device, args.precision, **run)
        batch = images.repeat_interleave(len(areas), 0)
        autocast = torch.autocast(
            args.device, dtype=torch.bfloat16, enabled="bf16" in args.precision
        )
        with autocast:
            plain = classifier_time(model, batch, args.device)
            nhwc = classifier_time(model, batch, args.device, channels_last=True)
        best = min(plain, nhwc)
        print(
            f"| {name} | {ep * 1e3:.0f} | {plain * 1e3:.0f} | {nhwc * 1e3:.0f} | {ep / best:.2f} |",
            flush=True,
        )
    if not args.no_reference and args.device == "cpu":
        model = torchvision.models.resnet18().eval()
        images = torch.rand(args.ref_images, 3, 224, 224)
        ours = ours_per_iteration(model, images, areas, "cpu", args.precision, **run)
        ref = reference_per_iteration(model, images, areas)
        print(
            f"\n# masks/s at equal iterations: resnet18, {args.ref_images} images × {len(areas)} areas"
        )
        print(
            "| implementation | s per iteration (all masks) | masks/s (at its iterations) | speed-up |"
        )
        print("|---|---|---|---|")
        masks = args.ref_images * len(areas)
        print(
            f"| lightning-extremal, 800 iterations | {ours:.2f} | {masks / (800 * ours):.4f} | "
            f"{(ref / ours) if ref else float('nan'):.2f}× |"
        )
        # Equal quality: the default (200 steps) and preset=fast (50) are no worse than the
        # reference's 800 steps on the held-out synthetic ground truth (convergence.py).
        # The warm start is a one-off cost per run (Grad-CAM + fitting the masks), which the
        # per-iteration difference cancels: timed apart and added.
        warm = warm_start_seconds(model, images, areas, args.precision, run)
        print(f"# warm start (Grad-CAM + fit, once per run): {warm:.2f} s, counted below")
        for label, preset in (("default", None), ("preset=fast", "fast")):
            options = preset_method(preset)
            steps = options.pop("max_iter")
            per_iter = ours_per_iteration(
                model, images, areas, "cpu", args.precision, **run, **options
            )
            total = per_iter * steps + (warm if options["warm_start"] != "none" else 0.0)
            speedup = f"{ref * 800 / total:.2f}×" if ref else "—"
            print(
                f"| lightning-extremal, {label} ({steps} iterations, equal quality) | "
                f"{per_iter:.2f} | {masks / total:.4f} | {speedup} |"
            )
        if ref:
            print(f"| TorchRay 1.0 | {ref:.2f} | {masks / (800 * ref):.4f} | 1.00× |")
    if not args.no_memory:
        print(
            f"\n# peak memory per mask (MiB): peak added by a 3-step run of {args.images} images × "
            f"{args.areas} areas, after a warm-up run, fresh process"
        )
        print("| model | MiB per mask |")
        print("|---|---|")
        for name in args.models:
            mib = peak_memory_per_mask(name, args.images, args.areas, args.device, args.compile)
            print(f"| {name} | {mib:.0f} |", flush=True)


if __name__ == "__main__":
    main()
