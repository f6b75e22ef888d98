"""Why EP trails Grad-CAM on pointing or IoU: pair by pair, whose region does the classifier
prefer at the object's own area — EP's or Grad-CAM's (and how far is the object itself)?

For every (image, class) pair of a synthetic pointing set and the bundled demo classifier, runs
EP with the method's defaults (or ``--preset``) at ``--areas`` and Grad-CAM, and at the
object's own area ``a = |object| / HW`` compares three regions of exactly ``a·HW`` pixels:

- **EP**: the top pixels of EP's mask interpolated at ``a`` (``ops.pointing.mask_at_area``, the
  benchmark's ``ep_object_iou: interpolated``), or with ``--at-object-area`` of a mask optimised
  at exactly ``a`` (one optimisation per pair: EP's own optimum at that area);
- **object**: the object itself;
- **Grad-CAM**: the top pixels of its map (its IoU@obj);

by the target logit when exactly that region is kept (the rest from the blur pyramid's most
blurred level) — EP's own reward at that area, with the area exact — and by IoU with the
object. For the pairs where Grad-CAM's pointing hits and EP's misses, and where Grad-CAM's IoU
beats EP's, the table splits:

- ``EP's region logit ≥ Grad-CAM's``: by EP's own objective EP's region is the better answer;
  Grad-CAM's agrees more with the object, not with what the classifier needs — no optimiser of
  this objective closes that gap;
- ``EP's region logit < Grad-CAM's``: EP ended below a region it could have held (its warm
  start began there): a local optimum, or a region the smooth masks (σ = 21 px blobs) cannot
  draw.

The object's own logit is shown too: its exact silhouette is outside the smooth mask family,
so it is an upper bound rather than a reachable answer.

  python benchmarks/ep_vs_gradcam.py [--single 90] [--multi 45] [--seed 3] [--preset NAME]
                                     [--areas 0.05 0.1 0.2 | --at-object-area] [--batch 16]
                                     [--pairs-out FILE]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import torch
from convergence import candidate_options, grad_cam_run, pairs_of, run_candidate

from lightning_extremal import extremal_perturbation
from lightning_extremal.data.datasets import SyntheticPointing
from lightning_extremal.data.demo import load_demo_classifier
from lightning_extremal.evaluation.baselines import grad_cam_saliency
from lightning_extremal.ops.perturbation import apply_pyramid, perturbation_pyramid
from lightning_extremal.ops.pointing import (
    ep_saliency,
    mask_at_area,
    object_iou,
    pointing_hit,
    resize_saliency,
    top_region,
)


def kept_logit(model, image: torch.Tensor, region: torch.Tensor, target: int) -> float:
    """Target logit with exactly ``region`` (H×W bool) kept, the rest most blurred."""
    pyramid = perturbation_pyramid(image[None], "blur", 8, 20.0, "reflect")
    with torch.no_grad():
        scores = model(apply_pyramid(pyramid, region[None, None].float(), torch.zeros(1).long()))
    return scores[0, target].item()


def compare_pair(model, image, target, truth, ep_masks, areas) -> dict:
    """The three regions of one pair at the object's area: logits and IoUs."""
    count = int(truth.sum())
    size = tuple(truth.shape)
    ep_map = mask_at_area(
        torch.stack([resize_saliency(m.float(), size) for m in ep_masks]),
        areas,
        count / truth.numel(),
    )
    cam = resize_saliency(grad_cam_saliency(model, image[None], [target])[0].float(), size)
    regions = {
        "ep": top_region(ep_map, count),
        "object": truth.bool(),
        "grad_cam": top_region(cam, count),
    }
    row = {f"{k}_logit": kept_logit(model, image, r, target) for k, r in regions.items()}
    row["ep_iou"] = object_iou(ep_map, truth)
    row["grad_cam_iou"] = object_iou(cam, truth)
    row["area"] = count / truth.numel()
    return row


def own_area_masks(model, dataset, pairs, options) -> tuple[list, list]:
    """One EP optimisation per pair at its object's area fraction: (1×H×W masks, [area])."""
    masks, areas = [], []
    for index, cls, truth, _ in pairs:
        area = truth.float().mean().item()
        result = extremal_perturbation(
            model, dataset[index].image[None], [cls], [area], progress=False, **options
        )
        masks.append(result.masks[0])
        areas.append([area])
    return masks, areas


def report(rows: list[dict]) -> None:
    """The summary table: all pairs, then the pairs where Grad-CAM's pointing hits and EP's
    misses, and where Grad-CAM's IoU beats EP's, each split by whose region keeps the higher
    logit at the object's area."""
    behind_hit = [r for r in rows if r["grad_cam_hit"] and not r["ep_hit"]]
    behind_iou = [r for r in rows if r["grad_cam_iou"] > r["ep_iou"]]
    groups = {"all pairs": rows}
    for name, group in (
        ("Grad-CAM hits, EP misses", behind_hit),
        ("Grad-CAM IoU > EP's", behind_iou),
    ):
        groups[name] = group
        groups["… EP's region logit ≥ Grad-CAM's"] = [
            r for r in group if r["ep_logit"] >= r["grad_cam_logit"]
        ]
        groups["… EP's region logit < Grad-CAM's"] = [
            r for r in group if r["ep_logit"] < r["grad_cam_logit"]
        ]
        print_groups(groups)
        groups = {}
    print_groups(
        {"EP hits, Grad-CAM misses": [r for r in rows if r["ep_hit"] and not r["grad_cam_hit"]]}
    )


def print_groups(groups: dict[str, list[dict]]) -> None:
    for name, group in groups.items():
        n = len(group)
        if not n:
            print(f"| {name} | 0 | — | — | — | — | — | — |")
            continue

        def mean(key, group=group, n=n):
            return sum(r[key] for r in group) / n

        ahead = sum(r["ep_logit"] >= r["object_logit"] for r in group)
        print(
            f"| {name} | {n} | {100 * mean('ep_iou'):.1f} | {100 * mean('grad_cam_iou'):.1f} | "
            f"{mean('ep_logit'):.2f} | {mean('grad_cam_logit'):.2f} | "
            f"{mean('object_logit'):.2f} | {ahead}/{n} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=90)
    parser.add_argument("--multi", type=int, default=45)
    parser.add_argument("--seed", type=int, default=3, help="synthetic stream (3: the benchmark's)")
    parser.add_argument("--preset", default=None, help="EP settings: a preset (default: none)")
    parser.add_argument("--areas", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    parser.add_argument("--batch", type=int, default=16, help="pairs per optimisation")
    parser.add_argument(
        "--at-object-area", action="store_true", help="optimise EP at each object's own area"
    )
    parser.add_argument("--pairs-out", help="write every pair's row to this JSON file")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    model = load_demo_classifier().eval()
    dataset = SyntheticPointing(args.single, args.multi, seed=args.seed)
    pairs = pairs_of(dataset)
    spec = {"preset": args.preset} if args.preset else {}
    options = candidate_options(spec)
    where = "each object's own area" if args.at_object_area else f"areas {args.areas}"
    print(
        f"# {args.single} single + {args.multi} multi-object images (seed {args.seed}), "
        f"{len(pairs)} pairs; EP {options['max_iter']} steps at {where}"
    )
    begin = time.perf_counter()
    if args.at_object_area:
        masks, areas = own_area_masks(model, dataset, pairs, options)
    else:
        run = run_candidate(model, dataset, pairs, args.areas, options, args.batch)
        masks, areas = run["masks"], [args.areas] * len(pairs)
    seconds = time.perf_counter() - begin
    cam = grad_cam_run(model, dataset, pairs)
    hits = [
        pointing_hit(ep_saliency(m, tuple(t.shape)), t, dataset[0].tolerance)
        for m, (_, _, t, _) in zip(masks, pairs, strict=True)
    ]
    rows = []
    for (index, cls, truth, multi), mask, area, ep_hit, cam_hit in zip(
        pairs, masks, areas, hits, cam["hit"], strict=True
    ):
        row = compare_pair(model, dataset[index].image, cls, truth, mask, area)
        row.update(ep_hit=bool(ep_hit), grad_cam_hit=bool(cam_hit))
        rows.append({"image": index, "class": cls, "multi": multi, **row})
    print(f"# EP {seconds:.0f} s, Grad-CAM {cam['seconds']:.0f} s")
    print(
        "| pairs | n | EP IoU | Grad-CAM IoU | EP region logit | Grad-CAM region logit | "
        "object logit | EP logit ≥ object's |"
    )
    print("|---|---|---|---|---|---|---|---|")
    report(rows)
    if args.pairs_out:
        with open(args.pairs_out, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
