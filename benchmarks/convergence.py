"""Convergence study: which optimiser settings reach a better optimum of EP's own energy, sooner.

For every (image, class) pair of a synthetic pointing set (exact object masks as ground truth)
and the bundled demo classifier, runs extremal perturbations at ``--areas`` with each candidate
setting and records, per mask:

- ``reward@a``: the target logit when exactly the mask's top ``a·HW`` pixels are kept (the rest
  from the pyramid's most blurred level) — EP's reward at the *requested* area, comparable
  across settings whatever their λ schedule (no area penalty: the area is exact);
- ``energy``: the game's final reward minus ``λ_ref·L_area`` with the reference's final
  ``λ_ref = 300·1.0035^800`` (one weight for every setting);
- ``|area err|``: ``|achieved − requested|`` of the smooth mask; ``converged``: the run's own
  judgement (``ExtremalResult.converged``: area within ``max(0.2·a, one parameter's share)``
  and reward stalled, :mod:`lightning_extremal.ops.convergence`; tables in RESULTS.md written
  before session 13 used ``|area err| ≤ 0.05``);

and per pair the pointing hit (the benchmark's protocol: summed masks, Gaussian, argmax) and
the IoU with the object at the object's own area (``iou@obj``: the |object| top pixels of the
mask interpolated between the two areas bracketing the object's area). Every candidate is
compared pair by pair with the first (the baseline) by a two-sided sign test on ``reward@a``
(per mask) and on pointing hits, and the wall time of the whole set is printed. ``best of …``
candidates are multi-start: per (pair, area) the start with the highest final energy, their
costs added. ``Grad-CAM`` scores the same pairs for comparison.

  python benchmarks/convergence.py [--single 90] [--multi 45] [--seed 3] [--batch 16]
                                   [--areas 0.05 0.1 0.2] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from scipy.stats import binomtest
from speed import preset_method  # this folder's speed.py: a preset's method options

from lightning_extremal import extremal_perturbation
from lightning_extremal.data.datasets import SyntheticPointing
from lightning_extremal.data.demo import load_demo_classifier
from lightning_extremal.ops.perturbation import apply_pyramid, perturbation_pyramid
from lightning_extremal.ops.pointing import (
    ep_saliency,
    object_area_iou,
    pointing_hit,
    top_area_region,
)

#: The reference's λ at its last step: the one area weight every setting's energy is scored with.
LAMBDA_REF = 300 * 1.0035**800

#: name → options of :func:`extremal_perturbation` (the first is the baseline). "default" and
#: the presets are the current defaults (since session 6 with the Grad-CAM warm start; the
#: "…, warm start none" rows are session 5's); the other candidates start uniformly, as then.
CANDIDATES: dict[str, dict | list[str] | str] = {
    "reference (SGD, 800)": {"preset": "reference"},
    "default": {},
    "preset=fast": {"preset": "fast"},
    "preset=quick": {"preset": "quick"},
    "fast before 2026-12 (Adam .05, 300, λ 300·1.0095^t)": {
        "optimizer": "adam",
        "lr": 0.05,
        "max_iter": 300,
        "lambda0": 300.0,
        "lambda_growth": 1.0095,
        "lambda_final": None,
        "warm_start": "none",
    },  # fmt: skip
    "Grad-CAM": "grad_cam",
    # warm starts (session 6): the masks start at the top-a region of Grad-CAM's map
    "default, warm start grad_cam": {"warm_start": "grad_cam"},
    "preset=fast, warm start grad_cam": {"preset": "fast", "warm_start": "grad_cam"},
    "default, warm start none": {"warm_start": "none"},
    "preset=fast, warm start none": {"preset": "fast", "warm_start": "none"},
    # session 10 (issue #27): the real-photos candidates, on the synthetic set
    "default, no jitter": {"jitter": False},
    "preset=fast, no jitter": {"preset": "fast", "jitter": False},
    "default, 100 steps": {"max_iter": 100},
}


def _adam(steps: int, lambda0: float, lr: float = 0.05, final: float = LAMBDA_REF, **kw) -> dict:
    """Adam over ``steps`` with λ growing geometrically from ``lambda0`` to ``final``."""
    return {"optimizer": "adam", "lr": lr, "max_iter": steps, "lambda0": lambda0,
            "lambda_final": final, "warm_start": "none", **kw}  # fmt: skip


CANDIDATES["adam 50, λ0 300, lr 0.1"] = _adam(50, 300, lr=0.1)
CANDIDATES["adam 50, λ0 300, init 0.5"] = _adam(50, 300, init=0.5)
CANDIDATES["adam 50, λ0 300, final λ 1000"] = _adam(50, 300, final=1000)
for _steps in (50, 100, 150, 200):
    CANDIDATES[f"adam {_steps}, λ0 300"] = _adam(_steps, 300)
    CANDIDATES[f"adam {_steps}, λ0 3"] = _adam(_steps, 3)
    CANDIDATES[f"adam {_steps}, λ0 30"] = _adam(_steps, 30)
    CANDIDATES[f"best of 2: adam {_steps}, λ0 300|3"] = [
        f"adam {_steps}, λ0 300",
        f"adam {_steps}, λ0 3",
    ]
    CANDIDATES[f"best of 3: adam {_steps}, λ0 300|30|3"] = [
        f"adam {_steps}, λ0 300",
        f"adam {_steps}, λ0 30",
        f"adam {_steps}, λ0 3",
    ]


def candidate_options(spec: dict) -> dict:
    """The extremal_perturbation options of a candidate: its preset's method fields + its own."""
    spec = dict(spec)
    options = preset_method(spec.pop("preset", None))
    options.update(spec)
    options.setdefault("compile", True)  # the smooth max compiled whatever the run's length
    return options


def pairs_of(dataset: SyntheticPointing) -> list[tuple[int, int, torch.Tensor, bool]]:
    """(image index, class, object mask, multi-object?) of every pair."""
    pairs = []
    for index in range(len(dataset)):
        item = dataset[index]
        for cls in item.classes:
            pairs.append((index, cls, item.masks[cls], index >= dataset.num_single))
    return pairs


def top_reward(model, pyramid, masks, which, targets, areas) -> torch.Tensor:
    """Target logit of each mask's top-a region (a 0/1 mask), P×K."""
    p, k = masks.shape[:2]
    hard = torch.stack(
        [top_area_region(masks[i, j], areas[j]).float() for i in range(p) for j in range(k)]
    )[:, None]
    with torch.no_grad():
        logits = model(apply_pyramid(pyramid, hard, which.repeat_interleave(k)))
    return logits.gather(1, targets.repeat_interleave(k)[:, None]).view(p, k)


def run_candidate(model, dataset, pairs, areas, options, batch) -> dict:
    """Final masks (P×K×H×W), energies, rewards@a and area errors (P×K) of one candidate."""
    out = {"masks": [], "energy": [], "reward_at_a": [], "area_err": [], "converged": []}
    seconds = 0.0
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        used = sorted({p[0] for p in chunk})
        images = torch.stack([dataset[i].image for i in used])
        which = torch.tensor([used.index(p[0]) for p in chunk])
        targets = torch.tensor([p[1] for p in chunk])
        begin = time.perf_counter()
        result = _run(model, images, which, targets, areas, options)
        seconds += time.perf_counter() - begin
        pyramid = perturbation_pyramid(images, "blur", 8, 20.0, "reflect")
        out["reward_at_a"].append(top_reward(model, pyramid, result.masks, which, targets, areas))
        last = result.history["area_loss"][..., -1]
        out["energy"].append(result.rewards - LAMBDA_REF * last)
        out["area_err"].append((result.achieved_areas - torch.tensor(areas)).abs())
        out["converged"].append(result.converged.float())
        out["masks"].append(result.masks)
    out = {k: torch.cat(v) for k, v in out.items()}
    out["seconds"] = seconds
    return out


def best_of(runs: list[dict]) -> dict:
    """Multi-start: per (pair, area) the run with the highest final energy; costs add up."""
    energy = torch.stack([r["energy"] for r in runs])  # S×P×K
    pick = energy.argmax(0)
    out = {}
    for key in ("masks", "energy", "reward_at_a", "area_err", "converged"):
        stacked = torch.stack([r[key] for r in runs])
        index = pick.view(1, *pick.shape, *([1] * (stacked.dim() - 3)))
        out[key] = stacked.gather(0, index.expand(1, *stacked.shape[1:]))[0]
    out["seconds"] = sum(r["seconds"] for r in runs)
    return out


def pair_metrics(run: dict, pairs, areas, tolerance: float) -> dict:
    """Per-pair pointing hits and IoU at the object's area of a run's masks."""
    hits, ious = [], []
    for masks, (_, _, truth, _) in zip(run["masks"], pairs, strict=True):
        saliency = ep_saliency(masks, tuple(truth.shape))
        hits.append(pointing_hit(saliency, truth, tolerance))
        ious.append(object_area_iou(masks, areas, truth))
    return {"hit": hits, "iou_obj": ious}


def _run(model, images, which, targets, areas, options):
    """EP over explicit (image, class) pairs: per image the list of its classes."""
    per_image = [[] for _ in range(len(images))]
    for i, c in zip(which.tolist(), targets.tolist(), strict=True):
        per_image[i].append(c)
    result = extremal_perturbation(model, images, per_image, areas, progress=False, **options)
    order = [
        (i, c) for i, c in zip(result.image_index.tolist(), result.targets.tolist(), strict=False)
    ]
    wanted = list(zip(which.tolist(), targets.tolist(), strict=False))
    assert order == wanted, "pairs out of order"
    return result


def grad_cam_run(model, dataset, pairs) -> dict:
    """Grad-CAM's pointing hits and IoU at the object's area on the same pairs (the
    benchmark's protocol: no smoothing, |object| top pixels)."""
    from lightning_extremal.evaluation.baselines import grad_cam_saliency
    from lightning_extremal.ops.pointing import object_iou, pointing_map, resize_saliency

    hits, ious = [], []
    begin = time.perf_counter()
    for index, cls, truth, _ in pairs:
        sal = grad_cam_saliency(model, dataset[index].image[None], [cls])[0]
        scored = pointing_map(sal, tuple(truth.shape), "plain")
        hits.append(pointing_hit(scored, truth, dataset[0].tolerance))
        ious.append(object_iou(resize_saliency(sal.float(), tuple(truth.shape)), truth))
    return {"hit": hits, "iou_obj": ious, "seconds": time.perf_counter() - begin}


def sign_test(wins: int, losses: int) -> float:
    """Two-sided sign test of ``wins`` against ``losses`` (ties left out)."""
    return binomtest(wins, wins + losses).pvalue if wins + losses else 1.0


def summarise(name: str, run: dict, base: dict | None, pairs, steps: str) -> str:
    """One markdown row: means, counts and the paired comparison with the baseline."""
    multi = [p[3] for p in pairs]
    hits = run["hit"]
    single_hits = sum(h for h, m in zip(hits, multi, strict=True) if not m)
    ep = "reward_at_a" in run
    err = run["area_err"] if ep else None
    row = (
        (
            f"| {name} | {steps} | {run['reward_at_a'].mean():.3f} | {run['energy'].mean():.2f} | "
            f"{err.mean():.3f} | {run['converged'].mean():.0%} | {err.max():.3f} | "
        )
        if ep
        else f"| {name} | — | — | — | — | — | — | "
    ) + (
        f"{single_hits}+{sum(hits) - single_hits}={sum(hits)}/{len(hits)} | "
        f"{100 * sum(run['iou_obj']) / len(hits):.1f} | {run['seconds']:.0f} |"
    )
    if base is None:
        return row + " — | — |"
    won = sum(a and not b for a, b in zip(hits, base["hit"], strict=True))
    lost = sum(b and not a for a, b in zip(hits, base["hit"], strict=True))
    if not ep or "reward_at_a" not in base:
        return row + f" — | +{won}/−{lost} (p={sign_test(won, lost):.2g}) |"
    diff = (run["reward_at_a"] - base["reward_at_a"]).flatten()
    up, down = int((diff > 1e-4).sum()), int((diff < -1e-4).sum())
    return (
        row + f" {up}/{down} (p={sign_test(up, down):.2g}) |"
        f" +{won}/−{lost} (p={sign_test(won, lost):.2g}) |"
    )


def study_set(args) -> tuple:
    """(the demo classifier, the synthetic set of ``args.single``/``multi``/``seed``, its pairs,
    the pointing tolerance), warnings silenced."""
    warnings.filterwarnings("ignore")
    model = load_demo_classifier().eval()
    dataset = SyntheticPointing(args.single, args.multi, seed=args.seed)
    return model, dataset, pairs_of(dataset), dataset[0].tolerance


def print_header(args, pairs) -> None:
    """The set's description line and the table's header (``summarise`` writes its rows)."""
    print(
        f"# {args.single} single + {args.multi} multi-object synthetic images (seed {args.seed}), "
        f"{len(pairs)} pairs, areas {args.areas}, {torch.get_num_threads()} threads"
    )
    print(
        "| setting | steps | reward@a | energy | area err | converged | worst err | "
        "hits (single+multi) | IoU@obj | seconds | reward@a vs baseline (up/down) | "
        "hits vs baseline |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=90)
    parser.add_argument("--multi", type=int, default=45)
    parser.add_argument("--seed", type=int, default=3, help="synthetic stream (3: the benchmark's)")
    parser.add_argument("--areas", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    parser.add_argument("--batch", type=int, default=16, help="pairs per optimisation")
    parser.add_argument("--only", nargs="*", help="candidate names to run (the first: baseline)")
    args = parser.parse_args()
    model, dataset, pairs, tolerance = study_set(args)
    print_header(args, pairs)
    runs: dict[str, dict] = {}
    base = None
    for name in args.only or list(CANDIDATES):
        spec = CANDIDATES[name]
        if spec == "grad_cam":
            run = grad_cam_run(model, dataset, pairs)
            runs[name] = run
            print(summarise(name, run, base, pairs, "—"), flush=True)
            base = base or run
            continue
        if isinstance(spec, list):  # multi-start: the best of earlier candidates
            run = best_of([runs[n] for n in spec])
            steps = "+".join(str(runs[n]["steps"]) for n in spec)
        else:
            options = candidate_options(spec)
            run = run_candidate(model, dataset, pairs, args.areas, options, args.batch)
            run["steps"] = steps = options["max_iter"]
        run.update(pair_metrics(run, pairs, args.areas, tolerance))
        runs[name] = run
        print(summarise(name, run, base, pairs, str(steps)), flush=True)
        base = base or run


if __name__ == "__main__":
    main()
