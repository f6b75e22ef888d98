"""The area curve's shared warm start, before/after: the two games (preserve, delete) each
fitting its own Grad-CAM warm start (before) against ``area_curve``'s games sharing the first
game's (after). Same model, images, areas and steps; prints both wall times and the largest
difference between the masks (0: the same outputs).

    [AFTER_FIRST=1] [THREADS=1] .venv/bin/python benchmarks/area_curve_cost.py [images] [max_iter] [model]
    (defaults: 2 demo images, max_iter=3, the demo classifier; model=tiny: a 2-layer CNN)
"""

from __future__ import annotations

import os
import sys
import time

import torch

from lightning_extremal import extremal_perturbation
from lightning_extremal.api.analyses import _play_games
from lightning_extremal.config import AnalysisConfig


def load(name: str, count: int):
    if name == "tiny":
        sys.path.insert(0, ".")
        from tests.helpers import TinyConvNet

        torch.manual_seed(0)
        return TinyConvNet().eval(), torch.rand(count, 3, 48, 48)
    from lightning_extremal.config import ModelConfig
    from lightning_extremal.data.demo import demo_images
    from lightning_extremal.data.models import load_model

    model = load_model(ModelConfig(name="demo")).model.eval()
    return model, demo_images()[0][:count]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))  # a shared machine: 1 thread
    model, images = load(sys.argv[3] if len(sys.argv) > 3 else "demo", count)
    areas = AnalysisConfig().areas
    options = dict(max_iter=steps, progress=False, seed=0)
    # warm-up (imports, first-call setup), so neither side pays it
    extremal_perturbation(model, images[:1], None, areas[:1], max_iter=1, progress=False)

    def separate():
        return {
            game: extremal_perturbation(model, images, None, areas, variant=game, **options)
            for game in ("preserve", "delete")
        }

    def shared():
        return _play_games(
            model, images, None, areas, ["preserve", "delete"], "simple", None, options
        )

    # AFTER_FIRST=1 times the shared games first (on a loaded machine, order matters)
    order = [("after", shared), ("before", separate)]
    if os.environ.get("AFTER_FIRST") != "1":
        order.reverse()
    results, seconds, cpu = {}, {}, {}
    for name, play in order:
        start, start_cpu = time.perf_counter(), time.process_time()
        results[name] = play()
        seconds[name] = time.perf_counter() - start
        cpu[name] = time.process_time() - start_cpu
    before, after, before_s, after_s = (
        results["before"],
        results["after"],
        seconds["before"],
        seconds["after"],
    )
    masks = len(images) * len(areas)
    for game in before:
        diff = float((before[game].masks - after[game].masks).abs().max())
        print(f"{game}: max |mask before − after| = {diff:.3g}; start {after[game].start}")
    print(f"{count} image(s) × {len(areas)} areas = {masks} masks per game, {steps} steps")
    print(f"before (a warm start per game): {before_s:.1f} s wall, {cpu['before']:.1f} s CPU")
    print(
        f"after (one shared warm start):  {after_s:.1f} s wall, {cpu['after']:.1f} s CPU "
        f"({before_s / after_s:.2f}× wall, {cpu['before'] / cpu['after']:.2f}× CPU)"
    )


if __name__ == "__main__":
    main()
