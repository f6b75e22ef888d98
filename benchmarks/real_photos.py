"""Why do EP's masks fragment on real photos? Every method's masks under one common ruler.

Issue #27 item 2: each method's masks on the real bed, judged by one common ruler, and how far
the default masks move from their Grad-CAM warm start.

Bed ``photos``: the 7 photos of ``data=photos`` (224 px, centre crop) under EfficientNet-Lite0
(ImageNet weights), target = each photo's label (its top-1 class), ground truth = its box.
Bed ``demo``: the 8 bundled demo images (128 px) under the demo classifier, their first label.

Per mask (one photo × one area × one method) the script records:

- the common-ruler reward: the same operator and model for every method. ``hard``: keep the
  mask's top-a pixels (a region of exactly the requested area a) and replace the rest by the
  project's most-blurred pyramid level (σ = 20 px, reflect padding); ``soft``: blend the soft
  mask through the project's 8-level blur pyramid (``apply_pyramid``: EP's own reward without
  jitter). Both as the target's softmax probability and logit;
- the achieved area (mask mean), the pointing hit (the mask smoothed with σ = 0.09·min(H, W),
  argmax within 15 px of the box: ``ops.pointing``), the largest connected region's share of
  the mask's mass (threshold 0.5, 4-connectivity) and the wall seconds of its call;
- for the project's EP methods: snapshots every ``--snapshot-every`` steps of the ruler reward
  and the connected share, the mean |m_T − m_0| from the step-0 (warm-start) mask and the game
  reward at step 0 and at the end (the module's history).

Methods: ``default`` (package defaults), ``default-no-warm`` (warm_start=none), ``reference``
(preset=reference), ``torchray-800`` (TorchRay's extremal_perturbation, its defaults),
``torchray-800-visible`` (the same, asked for the area that keeps a of the visible image,
not of its padded canvas: the soft masks of both then have area a), ``grad-cam`` (pointing and the ruler reward of its top-a region) and candidate option overrides
of the default (``default-sgd``, ``default-lr01``, ``default-no-jitter``,
``default-no-warm-no-jitter``, ``default-no-warm-sgd``, ``default-no-warm-lr01``,
``default-no-warm-lambda1k`` (λ 30→1000),
``default-sigma-step``). Results go to ``--out`` (JSON, rewritten
after every call; a rerun skips what is there). ``--summary`` prints the tables and sign tests
of a JSON, ``--figure`` draws the masks.

  python benchmarks/real_photos.py --methods default grad-cam torchray-800 --areas 0.1 \\
      --out /tmp/real_photos.json --threads 2
  python benchmarks/real_photos.py --bed demo --areas 0.05 0.1 0.2 --methods default \\
      --out /tmp/demo_bed.json
  python benchmarks/real_photos.py --summary /tmp/real_photos.json --figure masks.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from scipy import ndimage, stats

from lightning_extremal import extremal_perturbation
from lightning_extremal.config import ModelConfig
from lightning_extremal.data.demo import demo_ground_truth, demo_images, load_demo_classifier
from lightning_extremal.data.models import load_model
from lightning_extremal.data.sources import open_source
from lightning_extremal.evaluation.baselines import grad_cam_saliency
from lightning_extremal.ops.perturbation import apply_pyramid, blur_pyramid
from lightning_extremal.ops.pointing import (
    POINTING_TOLERANCE,
    pointing_hit,
    pointing_map,
    scaled_tolerance,
    top_area_region,
)

#: Option overrides of the package defaults per method (preset=reference: its YAML's values).
EP_METHODS: dict[str, dict] = {
    "default": {},
    "default-no-warm": {"warm_start": "none"},
    "reference": {
        "optimizer": "sgd",
        "lr": 0.01,
        "momentum": 0.9,
        "dampening": 0.9,
        "init": 1.0,
        "max_iter": 800,
        "lambda0": 300.0,
        "lambda_growth": 1.0035,
        "lambda_final": None,
        "warm_start": "none",
    },
    "default-sgd": {"optimizer": "sgd", "lr": 0.01},
    "default-lr01": {"lr": 0.01},
    "default-no-jitter": {"jitter": False},
    "default-no-warm-no-jitter": {"warm_start": "none", "jitter": False},
    "default-no-warm-sgd": {"warm_start": "none", "optimizer": "sgd", "lr": 0.01},
    "default-no-warm-lr01": {"warm_start": "none", "lr": 0.01},
    "default-no-warm-lambda1k": {"warm_start": "none", "lambda_final": 1000.0},
    "default-sigma-step": {"step": 14, "sigma": 42.0},
    "fast": {"max_iter": 50},
    "fast-no-jitter": {"max_iter": 50, "jitter": False},
    "default-100-no-jitter": {"max_iter": 100, "jitter": False},
}
#: TorchRay's own default number of steps.
TORCHRAY_ITER = 800
#: TorchRay's default mask grid step and smoothing σ.
TORCHRAY_STEP, TORCHRAY_SIGMA = 7, 21.0
OTHER_METHODS = ("torchray-800", "torchray-800-visible", "grad-cam")
#: Threshold of a mask's connected regions.
REGION_THRESHOLD = 0.5


def load_bed(bed: str, photos: list[str] | None):
    """(model, images N×3×H×W, ids, targets, truths H×W bool, tolerance) of a bed."""
    if bed == "demo":
        images, ids, labels = demo_images()
        truths = [masks[0] for masks in demo_ground_truth()]
        targets = [label[0] for label in labels]
        return (
            load_demo_classifier().eval(),
            images,
            ids,
            targets,
            truths,
            scaled_tolerance(128, 128),
        )
    model = load_model(ModelConfig(name="efficientnet_lite0")).model.eval()
    source = open_source("photos", size=224, crop=True)
    keep = [i for i, name in enumerate(source.ids) if photos is None or name in photos]
    images = torch.stack([source.load(i) for i in keep])
    targets = [source.labels[i][0] for i in keep]
    truths = [source.truth(i)[0] for i in keep]
    return model, images, [source.ids[i] for i in keep], targets, truths, POINTING_TOLERANCE


class Ruler:
    """The common ruler of one image: the target's score after perturbing by a mask."""

    def __init__(self, model, image: torch.Tensor, target: int) -> None:
        self.model, self.target = model, target
        self.pyramid = blur_pyramid(image[None], 8, 20.0, "reflect")  # the project's defaults
        self.image, self.blurred = image, self.pyramid[0, 0]

    @torch.no_grad()
    def _score(self, batch: torch.Tensor) -> tuple[list[float], list[float]]:
        logits = self.model(batch)
        prob = logits.softmax(1)[:, self.target]
        return prob.tolist(), logits[:, self.target].tolist()

    def hard(self, masks: torch.Tensor, area: float) -> tuple[list[float], list[float]]:
        """Top-a region kept, the rest at the most-blurred level: (probs, logits) per mask."""
        regions = torch.stack([top_area_region(m, area) for m in masks]).float()[:, None]
        return self._score(regions * self.image + (1 - regions) * self.blurred)

    def soft(self, masks: torch.Tensor) -> tuple[list[float], list[float]]:
        """The soft masks through the 8-level pyramid (EP's own perturbation, no jitter):
        (probs, logits) per mask."""
        index = torch.zeros(len(masks), dtype=torch.long)
        return self._score(apply_pyramid(self.pyramid, masks[:, None].float(), index))


def connected_share(mask: torch.Tensor) -> tuple[float, int]:
    """Mass of the largest region of ``mask > 0.5`` over the mass of all regions; region count."""
    m = mask.detach().float().numpy()
    labels, count = ndimage.label(m > REGION_THRESHOLD)
    if count == 0:
        return 0.0, 0
    mass = ndimage.sum(m, labels, index=np.arange(1, count + 1))
    return float(mass.max() / mass.sum()), int(count)


class Snapshots(Callback):
    """Keeps the module's masks at step 0 (after the warm start) and every ``every`` steps."""

    def __init__(self, every: int) -> None:
        self.every, self.masks = every, {}

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        step = trainer.global_step
        if step % self.every == 0:
            with torch.no_grad():
                self.masks[step] = module.masks().detach().cpu().clone()


def run_ep(model, image, target, areas, options, every, seed=0):
    """The project's EP: masks K×H×W, seconds, and its trajectory record."""
    snaps = Snapshots(every)
    start = time.perf_counter()
    result = extremal_perturbation(
        model, image[None], [target], areas, logger="none", progress=False,
        callbacks=[snaps], seed=seed, **options,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    masks = result.masks[0]
    shape = masks.shape
    traj = {step: m.reshape(shape) for step, m in sorted(snaps.masks.items())}
    history = result.history["reward"][0]  # K×T game reward (jittered on even steps)
    extra = {
        "game_reward_first": history[:, 0].tolist(),
        "game_reward_last": history[:, -1].tolist(),
    }
    extra["game_reward_final"] = result.rewards[0].tolist()
    extra["moved_from_step0"] = (masks - traj[0]).abs().mean((1, 2)).tolist()
    return masks, seconds, traj, extra


def visible_request(area: float, height: int, width: int) -> float:
    """The area to ask TorchRay for so that its mask keeps ``area`` of the visible image: it
    ranks its mask on a canvas padded around the image (FACTS, "known quirks"; 260×260 for
    224×224 at its default step 7 and σ 21), so ask for the same number of pixels as a
    fraction of that canvas."""
    from torchray.attribution.extremal_perturbation import MaskGenerator

    canvas = MaskGenerator((height, width), TORCHRAY_STEP, TORCHRAY_SIGMA).shape_out
    return area * height * width / (canvas[0] * canvas[1])


def run_torchray(model, image, target, areas, visible=False):
    from torchray.attribution.extremal_perturbation import extremal_perturbation as torchray_ep

    asked = [visible_request(a, *image.shape[-2:]) if visible else a for a in areas]
    start = time.perf_counter()
    masks, _ = torchray_ep(model, image[None], target, areas=asked, max_iter=TORCHRAY_ITER)
    seconds = time.perf_counter() - start
    for p in model.parameters():  # TorchRay freezes the model and never restores it
        p.requires_grad_(True)
    return masks[:, 0].detach(), seconds


def mask_metrics(ruler, masks, areas, truth, tolerance) -> list[dict]:
    rows = []
    for mask, area in zip(masks, areas, strict=True):
        prob, logit = ruler.hard(mask[None], area)
        soft_prob, soft_logit = ruler.soft(mask[None])
        share, count = connected_share(mask)
        point_map = pointing_map(mask, tuple(truth.shape), "extremal")
        rows.append(
            {
                "area": area,
                "ruler_prob_hard": prob[0],
                "ruler_logit_hard": logit[0],
                "ruler_prob_soft": soft_prob[0],
                "ruler_logit_soft": soft_logit[0],
                "achieved_area": float(mask.float().mean()),
                "pointing_hit": pointing_hit(point_map, truth, tolerance),
                "connected_share": share,
                "regions": count,
            }
        )
    return rows


def trajectory(ruler, traj, areas) -> list[dict]:
    """Ruler reward and connected share of each snapshot, per area."""
    out = []
    for k, area in enumerate(areas):
        steps = list(traj)
        batch = torch.stack([traj[s][k] for s in steps])
        prob, _ = ruler.hard(batch, area)
        share = [connected_share(m)[0] for m in batch]
        out.append({"steps": steps, "ruler_prob_hard": prob, "connected_share": share})
    return out


def run_method(method, model, image, target, areas, truth, tolerance, every, seed=0) -> list[dict]:
    ruler = Ruler(model, image, target)
    if method == "grad-cam":
        start = time.perf_counter()
        cam = grad_cam_saliency(model, image[None], [target])[0]
        seconds = time.perf_counter() - start
        hit = pointing_hit(pointing_map(cam, tuple(truth.shape), "plain"), truth, tolerance)
        rows = []
        for area in areas:
            prob, logit = ruler.hard(cam[None], area)
            region = top_area_region(cam, area).float()
            share, count = connected_share(region)
            rows.append(
                {"area": area, "ruler_prob_hard": prob[0], "ruler_logit_hard": logit[0],
                 "pointing_hit": hit, "achieved_area": float(region.mean()),
                 "connected_share": share, "regions": count, "seconds": seconds}
            )  # fmt: skip
        return rows, (cam / cam.max().clamp(min=1e-12))[None].expand(len(areas), -1, -1)
    if method in ("torchray-800", "torchray-800-visible"):
        masks, seconds = run_torchray(model, image, target, areas, method.endswith("visible"))
        rows = mask_metrics(ruler, masks, areas, truth, tolerance)
        return [{**row, "seconds": seconds / len(areas)} for row in rows], masks
    masks, seconds, traj, extra = run_ep(
        model, image, target, areas, EP_METHODS[method], every, seed
    )
    rows = mask_metrics(ruler, masks, areas, truth, tolerance)
    for k, row in enumerate(rows):
        row["seconds"] = seconds / len(areas)
        row.update({key: value[k] for key, value in extra.items()})
        row["ruler_prob_hard_step0"] = ruler.hard(traj[0][k][None], row["area"])[0][0]
        row["connected_share_step0"] = connected_share(traj[0][k])[0]
        row["trajectory"] = trajectory(ruler, traj, areas)[k]
    return rows, masks


def measure(args) -> None:
    torch.set_num_threads(args.threads)
    model, images, ids, targets, truths, tolerance = load_bed(args.bed, args.photos)
    for p in model.parameters():
        p.requires_grad_(True)
    out = Path(args.out)
    records = json.loads(out.read_text()) if out.exists() else []
    done = {(r["image"], r["method"]) for r in records}
    store = out.with_suffix(".masks.pt")
    saved = torch.load(store, weights_only=False) if store.exists() else {"masks": {}}
    saved.update(images=ids, pixels=images, boxes=[box_of(t) for t in truths])
    for method in args.methods:
        for image, name, target, truth in zip(images, ids, targets, truths, strict=True):
            if (name, method) in done:
                continue
            rows, masks = run_method(method, model, image, target, args.areas, truth, tolerance,
                                     args.snapshot_every, args.seed)  # fmt: skip
            for area, mask in zip(args.areas, masks, strict=True):
                saved["masks"][(name, method, area)] = mask.detach().float().clone()
            torch.save(saved, store)
            for row in rows:
                records.append({"bed": args.bed, "seed": args.seed, "image": name, "target": target,
                                "method": method, **row})  # fmt: skip
            out.write_text(json.dumps(records, indent=1))
            print(f"{method:>26} {name:>14} " + " ".join(
                f"a={r['area']} p={r['ruler_prob_hard']:.3f} share={r['connected_share']:.2f} "
                f"hit={int(r['pointing_hit'])} {r['seconds']:.0f}s" for r in rows), flush=True)  # fmt: skip


def box_of(truth: torch.Tensor) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1) of an H×W bool ground truth's bounding box."""
    ys, xs = torch.nonzero(truth, as_tuple=True)
    return int(ys.min()), int(xs.min()), int(ys.max()), int(xs.max())


def by_key(records, method) -> dict:
    return {(r["image"], r["area"]): r for r in records if r["method"] == method}


def sign_tests(records: list[dict], methods: list[str], ruler: str) -> None:
    """Pair by pair on ``ruler``: each default-family method against every other method."""
    print(f"\nPair by pair, {ruler}: A wins where its value is higher (two-sided sign test)\n")
    print("| A | B | pairs | A wins | B wins | ties | p |")
    print("|---|---|---|---|---|---|---|")
    ours = [m for m in methods if m in EP_METHODS and m != "reference"]
    for a, b in [(x, y) for x in ours for y in methods if x != y]:
        if b in ours and methods.index(b) < methods.index(a):
            continue
        ra, rb = by_key(records, a), by_key(records, b)
        keys = sorted(set(ra) & set(rb))
        if not keys:
            continue
        diff = [ra[k][ruler] - rb[k][ruler] for k in keys]
        wins, losses = sum(d > 1e-6 for d in diff), sum(d < -1e-6 for d in diff)
        p = stats.binomtest(wins, wins + losses).pvalue if wins + losses else 1.0
        ties = len(keys) - wins - losses
        print(f"| {a} | {b} | {len(keys)} | {wins} | {losses} | {ties} | {p:.3f} |")


def summary(paths: list[str]) -> None:
    records = [r for path in paths for r in json.loads(Path(path).read_text())]
    methods = list(dict.fromkeys(r["method"] for r in records))
    print(f"results of {' '.join(paths)}\n")
    print("| method | masks | ruler prob (hard) | ruler logit (hard) | ruler prob (soft) "
          "| achieved area | pointing | share in largest region | share ≥ 0.8 | s per mask |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for method in methods:
        rows = [r for r in records if r["method"] == method]
        hits = sum(r["pointing_hit"] for r in rows)
        soft = [r["ruler_prob_soft"] for r in rows if "ruler_prob_soft" in r]
        cells = [
            method,
            str(len(rows)),
            f"{np.mean([r['ruler_prob_hard'] for r in rows]):.3f}",
            f"{np.mean([r['ruler_logit_hard'] for r in rows]):.2f}",
            f"{np.mean(soft):.3f}" if soft else "—",
            f"{np.mean([r['achieved_area'] for r in rows]):.3f}",
            f"{hits}/{len(rows)}",
            f"{np.mean([r['connected_share'] for r in rows]):.2f}",
            f"{sum(r['connected_share'] >= 0.8 for r in rows)}/{len(rows)}",
            f"{np.mean([r['seconds'] for r in rows]):.1f}",
        ]
        print("| " + " | ".join(cells) + " |")
    areas = sorted({r["area"] for r in records})
    if len(areas) > 1:
        print("\nMean ruler logit (hard) per area\n")
        print("| method | " + " | ".join(f"a = {a:g}" for a in areas) + " |")
        print("|---|" + "---|" * len(areas))
        for method in methods:
            means = [
                np.mean([r["ruler_logit_hard"] for r in records
                         if r["method"] == method and r["area"] == a] or [np.nan])
                for a in areas
            ]  # fmt: skip
            print(f"| {method} | " + " | ".join(f"{m:.2f}" for m in means) + " |")
    for ruler in ("ruler_prob_hard", "ruler_logit_hard"):
        sign_tests(records, methods, ruler)
    moved = [r for r in records if "moved_from_step0" in r]
    if moved:
        print("\nFrom step 0 to the end (project EP methods)\n")
        print("| method | mean abs(m_T − m_0) | ruler prob step 0 → end | rises | game reward "
              "step 0 → end | share step 0 → end |")  # fmt: skip
        print("|---|---|---|---|---|---|")
        for method in dict.fromkeys(r["method"] for r in moved):
            rows = [r for r in moved if r["method"] == method]
            first = np.mean([r["ruler_prob_hard_step0"] for r in rows])
            last = np.mean([r["ruler_prob_hard"] for r in rows])
            rises = sum(r["ruler_prob_hard"] > r["ruler_prob_hard_step0"] for r in rows)
            print(
                f"| {method} | {np.mean([r['moved_from_step0'] for r in rows]):.3f} | "
                f"{first:.3f} → {last:.3f} | {rises}/{len(rows)} | "
                f"{np.mean([r['game_reward_first'] for r in rows]):.3f} → "
                f"{np.mean([r['game_reward_final'] for r in rows]):.3f} | "
                f"{np.mean([r['connected_share_step0'] for r in rows]):.2f} → "
                f"{np.mean([r['connected_share'] for r in rows]):.2f} |"
            )


def per_image(records: list[dict]) -> None:
    """Per (image, area): each method's ruler logit (hard) / connected share / pointing hit."""
    methods = list(dict.fromkeys(r["method"] for r in records))
    print("\nPer mask: ruler logit (hard) / share in largest region / hit\n")
    print("| image | area | " + " | ".join(methods) + " |")
    print("|---|---|" + "---|" * len(methods))
    for key in dict.fromkeys((r["image"], r["area"]) for r in records):
        cells = []
        for method in methods:
            r = by_key(records, method).get(key)
            hit = "hit" if r and r["pointing_hit"] else "miss"
            cells.append(
                f"{r['ruler_logit_hard']:.2f} / {r['connected_share']:.2f} / {hit}" if r else "—"
            )
        print(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")


def trajectories(records: list[dict]) -> None:
    """Mean ruler logit (hard) and connected share at each snapshot step, per EP method."""
    traced = [r for r in records if "trajectory" in r]
    for method in dict.fromkeys(r["method"] for r in traced):
        rows = [r["trajectory"] for r in traced if r["method"] == method]
        steps = rows[0]["steps"]
        prob = np.mean([t["ruler_prob_hard"] for t in rows], axis=0)
        share = np.mean([t["connected_share"] for t in rows], axis=0)
        print(f"\n{method}: step | mean ruler prob (hard) | mean connected share")
        for step, p, c in zip(steps, prob, share, strict=True):
            print(f"  {step:4d} | {p:.3f} | {c:.2f}")


def figure(paths: list[str], out: str, area: float, only: list[str] | None = None) -> None:
    """Each image (rows) with its box and its mask at ``area`` of each method (columns), read
    from the ``.masks.pt`` file beside the results JSON."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    saved: dict = {"masks": {}, "pixels": {}, "boxes": {}}
    for path in paths:  # each file may hold some of the images (e.g. a run split by --photos)
        part = torch.load(Path(path).with_suffix(".masks.pt"), weights_only=False)
        saved["masks"].update(part["masks"])
        for i, name in enumerate(part["images"]):
            saved["pixels"][name], saved["boxes"][name] = part["pixels"][i], part["boxes"][i]
    names = list(saved["pixels"])
    methods = list(dict.fromkeys(key[1] for key in saved["masks"]))
    methods = [m for m in only if m in methods] if only else methods
    fig, axes = plt.subplots(
        len(names), len(methods) + 1, figsize=(1.3 * (len(methods) + 1), 1.3 * len(names))
    )
    for i, name in enumerate(names):
        image = saved["pixels"][name].permute(1, 2, 0).clamp(0, 1).numpy()
        axes[i, 0].imshow(image)
        axes[i, 0].set_ylabel(name, fontsize=7)
        for j, method in enumerate(methods):
            ax = axes[i, j + 1]
            mask = saved["masks"].get((name, method, area))
            ax.imshow(image * 0.35)
            if mask is not None:
                ax.imshow(mask.numpy(), cmap="magma", alpha=0.75, vmin=0, vmax=1)
            if i == 0:
                ax.set_title(method, fontsize=7)
        for ax in axes[i]:
            y0, x0, y1, x1 = saved["boxes"][name]
            ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="lime", lw=0.8))
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout(pad=0.2)
    fig.savefig(out, dpi=56)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bed", choices=("photos", "demo"), default="photos")
    parser.add_argument("--photos", nargs="*", default=None, help="photo ids (default: all 7)")
    parser.add_argument("--areas", nargs="+", type=float, default=[0.1])
    parser.add_argument("--methods", nargs="+", default=["default", "grad-cam"],
                        choices=[*EP_METHODS, *OTHER_METHODS])  # fmt: skip
    parser.add_argument("--out", default="real_photos.json", help="results JSON (resumed)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="EP's seed (its jitter)")
    parser.add_argument("--snapshot-every", type=int, default=25)
    parser.add_argument("--summary", nargs="+", metavar="JSON", help="print the tables of results")
    parser.add_argument("--figure", metavar="PNG", help="with --summary: draw the masks")
    parser.add_argument("--figure-methods", nargs="+", help="the figure's columns (default: all)")
    args = parser.parse_args()
    if args.summary:
        summary(args.summary)
        records = [r for path in args.summary for r in json.loads(Path(path).read_text())]
        per_image(records)
        trajectories(records)
        if args.figure:
            figure(args.summary, args.figure, args.areas[0], args.figure_methods)
        return
    measure(args)


if __name__ == "__main__":
    main()
