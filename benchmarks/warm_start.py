"""Warm starts: does starting EP's masks from a cheap saliency map reach a better optimum of EP's
own energy than the uniform start (and point / overlap the object better)?

A Lightning callback sets, before the first step, each mask's parameters so that the smooth
mask matches the top-``a`` region of a saliency map of its (image, class) — fitted by Adam on
the squared difference, the classifier untouched — then EP runs as usual. Sources:
``grad_cam`` (two passes per image) and ``gradient`` (|∂y/∂x| summed over colours, smoothed).
Every candidate is compared pair by pair with the uniform start (the first row) as in
``convergence.py`` (reward@a and energy per mask, pointing and IoU@obj per pair, sign tests).

  python benchmarks/warm_start.py [--single 20] [--multi 10] [--seed 11] [--preset NAME]
                                  [--areas 0.05 0.1 0.2] [--sources grad_cam gradient]
"""

from __future__ import annotations

import argparse

import torch
from convergence import (
    candidate_options,
    grad_cam_run,
    pair_metrics,
    print_header,
    run_candidate,
    study_set,
    summarise,
)
from lightning.pytorch.callbacks import Callback

from lightning_extremal.evaluation.baselines import grad_cam_saliency
from lightning_extremal.ops.pointing import smooth_saliency, top_area_region

#: Adam steps and learning rate of the parameter fit to the saliency region.
FIT_STEPS, FIT_LR = 50, 0.1


def gradient_saliency(model, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """|∂y_t/∂x| summed over colours and smoothed (σ = 4 px): N×H×W."""
    x = images.detach().clone().requires_grad_(True)
    model(x).gather(1, targets[:, None]).sum().backward()
    grad = x.grad.abs().sum(1)
    return torch.stack([smooth_saliency(g, 4.0, "replicate") for g in grad])


class WarmStart(Callback):
    """Before step 0, fit every mask's parameters to the top-a region of ``source``'s map."""

    def __init__(self, source: str) -> None:
        self.source = source

    def on_train_start(self, trainer, module) -> None:
        if module.global_step:
            return
        images = module.pyramid[:, -1]  # the pyramid's last level is the image itself
        pairs = module.mask_image.view(module.num_pairs, module.num_areas)[:, 0]
        targets = module.mask_target.view(module.num_pairs, module.num_areas)[:, 0]
        with torch.enable_grad(), torch.inference_mode(False):
            if self.source == "grad_cam":
                maps = grad_cam_saliency(module.classifier, images[pairs], targets.tolist())
            else:
                maps = gradient_saliency(module.classifier, images[pairs], targets)
            areas = module.config.areas
            regions = torch.stack(
                [
                    top_area_region(maps[p], area).float()
                    for p in range(module.num_pairs)
                    for area in areas
                ]
            )[:, None]
            # a separate Adam over the mask parameters (the run's optimiser state is untouched)
            optimiser = torch.optim.Adam([module.mask_params], lr=FIT_LR)
            for _ in range(FIT_STEPS):
                loss = ((module.masks() - regions) ** 2).mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                with torch.no_grad():
                    module.mask_params.clamp_(0, 1)
            module.mask_params.grad = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=20)
    parser.add_argument("--multi", type=int, default=10)
    parser.add_argument("--seed", type=int, default=11, help="synthetic stream (11: held out)")
    parser.add_argument("--preset", default=None)
    parser.add_argument("--areas", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--sources", nargs="+", default=["grad_cam", "gradient"])
    args = parser.parse_args()
    model, dataset, pairs, tolerance = study_set(args)
    print_header(args, pairs)
    base = None
    spec = {"preset": args.preset} if args.preset else {}
    for source in [None, *args.sources]:
        # the product's own warm start off: the uniform start, or this script's callback
        options = candidate_options({**spec, "warm_start": "none"})
        if source:
            options["callbacks"] = [WarmStart(source)]
        run = run_candidate(model, dataset, pairs, args.areas, options, args.batch)
        run.update(pair_metrics(run, pairs, args.areas, tolerance))
        name = f"warm start: {source}" if source else "uniform start (warm_start=none)"
        print(summarise(name, run, base, pairs, str(options["max_iter"])), flush=True)
        base = base or run
    cam = grad_cam_run(model, dataset, pairs)
    print(summarise("Grad-CAM", cam, base, pairs, "—"), flush=True)


if __name__ == "__main__":
    main()
