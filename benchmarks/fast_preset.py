"""Fewer iterations for the same answer: quality vs iterations on the synthetic set (the study
of session 2; the current one, with the λ schedules that end at a set λ, is convergence.py).

Runs the main job on ``data=synthetic`` (ground-truth object masks) with the bundled demo
classifier for the reference schedule (SGD, 800 steps) and candidate fast settings,
and prints the mean IoU with the object (``quality/iou``: the top-a pixels of the largest area's
mask vs the object's exact pixels) and the pointing accuracy, with the wall time. The settings
with the fewest iterations that reached the reference's quality with a margin were
``preset=fast`` until 2026-12.

  python benchmarks/fast_preset.py [--images 16] [--seed 1000] [--areas 0.05 0.1 0.2] [--compile auto|true|false]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import torch

from lightning_extremal.config import compose
from lightning_extremal.jobs.run.job import run_job

CANDIDATES = {
    "reference (sgd, 800)": ["preset=reference"],
    "sgd, 400, growth 1.007": ["max_iter=400", "lambda_growth=1.007"],
    "adam lr 0.05, 400, growth 1.007": [
        "optimizer=adam",
        "lr=0.05",
        "max_iter=400",
        "lambda_growth=1.007",
    ],
    "adam lr 0.05, 200, growth 1.014": [
        "optimizer=adam",
        "lr=0.05",
        "max_iter=200",
        "lambda_growth=1.014",
    ],
    "preset=fast (before 2026-12)": [
        "optimizer=adam",
        "lr=0.05",
        "max_iter=300",
        "lambda0=300",
        "lambda_growth=1.0095",
    ],
    "adam lr 0.05, 300, λ0 3, growth 1.02512": [
        "optimizer=adam",
        "lr=0.05",
        "max_iter=300",
        "lambda0=3",
        "lambda_growth=1.02512",
    ],
    "adam lr 0.05, 300, growth 1.0095": [
        "optimizer=adam",
        "lr=0.05",
        "max_iter=300",
        "lambda_growth=1.0095",
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--areas", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    parser.add_argument("--compile", default="auto", choices=["auto", "true", "false"])
    parser.add_argument("--seed", type=int, default=1000, help="synthetic image stream")
    parser.add_argument("--only", nargs="*", help="candidate names to run")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    areas = "[" + ",".join(f"{a:g}" for a in args.areas) + "]"
    print(
        f"# synthetic single-object images: {args.images} (seed {args.seed}), areas {areas}, "
        "demo classifier, "
        f"{torch.get_num_threads()} threads, compile {args.compile}"
    )
    print("| settings | iterations | mean IoU | pointing | seconds |")
    print("|---|---|---|---|---|")
    for name, extra in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        with tempfile.TemporaryDirectory() as out:
            cfg = compose(
                [
                    "data=synthetic",
                    f"data.num_images={args.images}",
                    f"data.synthetic_seed={args.seed}",
                    f"areas={areas}",
                    "logger=none",
                    "trainer.progress=false",
                    f"trainer.compile={args.compile}",
                    "data.targets=labels",
                    "logger.final_table=false",
                    "logger.mask_every_n_steps=0",
                    f"data.batch_size={args.images}",
                    f"output_dir={out}",
                    "method.lambda0=300",
                    "method.lambda_final=null",  # the λ = λ₀·g^t schedules of this study
                    *extra,
                ]
            )
            start = time.perf_counter()
            run_job(cfg)
            seconds = time.perf_counter() - start
            quality = json.loads((Path(out) / "summary.json").read_text())["quality"]
        print(
            f"| {name} | {cfg.method.max_iter} | {quality['iou']:.3f} | "
            f"{quality['pointing']:.3f} | {seconds:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
