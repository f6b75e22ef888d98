"""The paper's analyses on the synthetic set with the bundled demo classifier (offline, CPU):

1. ``analyze area-curve`` on single-object images: the distribution of the sufficient area a*
   (the smallest area whose preserved softmax probability reaches the full image's) and of the
   necessary area (the smallest deleted area that halves it);
2. ``analyze objects`` on multi-object images (every labelled object a target): each object
   alone, each pair and all against the sum of the parts (logit gains over the blurred
   image), and the share of each object the sufficient-area mask covers.

Each analysis is the command line's job, run in this process; their folders are kept under
``--out``. Prints both tables and the wall time.

  python benchmarks/paper_analyses.py [--single 8] [--multi 4] [--max-iter 60]
                                      [--areas 0.01 0.0219 0.0478 0.1046 0.2287 0.5]
                                      [--out outputs/paper_analyses] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from lightning_extremal.cli.main import main

DEFAULT_AREAS = [0.01, 0.0219, 0.0478, 0.1046, 0.2287, 0.5]  # 6 log-spaced from 0.01 to 0.5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=8, help="single-object images (area curve)")
    parser.add_argument("--multi", type=int, default=4, help="multi-object images (objects)")
    parser.add_argument("--max-iter", type=int, default=60)
    parser.add_argument("--areas", type=float, nargs="+", default=DEFAULT_AREAS)
    parser.add_argument("--out", default="outputs/paper_analyses")
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def analyze(name: str, out: Path, args: argparse.Namespace, *extra: str) -> dict:
    """Run ``lightning-extremal analyze NAME`` into ``out``; its JSON result."""
    areas = ",".join(f"{a:g}" for a in args.areas)
    argv = ["analyze", name, "data=synthetic", f"areas=[{areas}]", f"max_iter={args.max_iter}"]
    argv += ["trainer.progress=false", "logger=wandb", f"output_dir={out}", "--overwrite", *extra]
    if main(argv) != 0:
        raise SystemExit(f"analyze {name} failed")
    marker = json.loads((out / "analysis.json").read_text())
    return json.loads((out / marker["result"]).read_text())


def area_table(result: dict) -> list[str]:
    pairs = result["pairs"]
    lines = ["| image | class | full prob | a* (preserve ≥ 1.0×) | necessary (delete ≤ 0.5×) |"]
    lines.append("|---|---|---|---|---|")
    for p in pairs:
        suff = "not reached" if p["sufficient_area"] is None else f"{p['sufficient_area']:.3f}"
        nec = "not reached" if p["necessary_area"] is None else f"{p['necessary_area']:.3f}"
        lines.append(
            f"| {p['image']} | {p['target_name']} | {p['full_score']:.3f} | {suff} | {nec} |"
        )
    s = result["summary"]
    for key in ("sufficient_area", "necessary_area"):
        lines.append(
            f"\n{key}: reached by {int(s[f'area_curve/{key}/reached'])}/{len(pairs)} pairs; "
            f"median {s.get(f'area_curve/{key}/median')}, quartiles "
            f"{s.get(f'area_curve/{key}/q1')}–{s.get(f'area_curve/{key}/q3')} (None: inf)"
        )
    return lines


def objects_table(result: dict) -> list[str]:
    lines = ["| kind | rows | median gain / sum of parts | mean gain | mean sum of parts |"]
    lines.append("|---|---|---|---|---|")
    rows = result["contributions"]
    for kind in ("single", "pair", "all"):
        chosen = [r for r in rows if r["kind"] == kind and r["ratio"] is not None]
        if chosen:
            ratio = statistics.median(r["ratio"] for r in chosen)
            gain = statistics.fmean(r["gain"] for r in chosen)
            parts = statistics.fmean(r["sum_of_parts"] for r in chosen)
            lines.append(f"| {kind} | {len(chosen)} | {ratio:.3f} | {gain:.3f} | {parts:.3f} |")
    lines += ["", "| object | target's | area | covered by a* mask |", "|---|---|---|---|"]
    for c in result["coverage"]:
        share = "—" if c["coverage"] is None else f"{c['coverage']:.2f}"
        lines.append(
            f"| {c['image']} {c['object_name']} (target {c['target_name']}) | "
            f"{'yes' if c['is_target'] else 'no'} | {c['object_area']:.3f} | {share} |"
        )
    return lines


def run() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    start = time.perf_counter()
    curve = analyze("area-curve", out / "area-curve", args, f"data.num_images={args.single}")
    middle = time.perf_counter()
    objects = analyze(
        "objects",
        out / "objects",
        args,
        f"data.num_images={args.multi}",
        "data.multi_object=true",
        "data.targets=labels",
    )
    end = time.perf_counter()
    print("\n## Area curve (demo classifier, synthetic single-object images)\n")
    print("\n".join(area_table(curve)))
    print("\n## Objects (demo classifier, synthetic multi-object images, every label a target)\n")
    print("\n".join(objects_table(objects)))
    print(
        f"\nwall time: area curve {middle - start:.0f} s, objects {end - middle:.0f} s; "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}"
    )


if __name__ == "__main__":
    run()
