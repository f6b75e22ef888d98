"""``lightning-extremal analyze NAME [key=value ...]``: the paper's analyses. Each analysis is
one entry of :data:`ANALYSES` (its job, imported only when it runs, and its help); nothing
here imports torch, so ``--help`` answers at once."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from importlib import import_module

from ..config import AnalysisConfig, compose_analysis, config_yaml, describe_fields, did_you_mean
from ..errors import UsageError
from .arguments import refuse_unknown_options, take_flag
from .help import key_lines


@dataclass(frozen=True)
class Analysis:
    """One analysis: ``job`` is ``"module:function"`` in ``lightning_extremal.jobs`` (called
    with the run's configuration, the analysis' and ``overwrite``); ``summary`` one line;
    ``details`` what it computes and writes."""

    job: str
    summary: str
    details: str


ANALYSES = {
    "area-curve": Analysis(
        "analyze.area_curve:run_area_curve_job",
        "normalised score over a grid of areas; sufficient area a*, necessary area",
        "For each (image, target) pair, one batched fit per game (preserve, delete) over the "
        "area grid analysis.areas, then the score of the image seen through each mask over "
        "the full image's score (score: prob = softmax probability of the target, reward = "
        "the method's reward, e.g. the logit). Sufficient area a*: the smallest area whose "
        "preserved score reaches analysis.preserve_fraction of the full score; necessary "
        "area: the smallest deleted area leaving at most analysis.delete_fraction of it "
        "(log-linear between grid areas unless analysis.interpolate=false; empty = not "
        "reached within the grid; at the grid's smallest area: a bound, printed ≤ 0.01 and "
        "flagged upper). The games share one warm start. Prints an estimate before the fits, "
        "a line per game, and flags curves that are not monotone (more max_iter would help) "
        "and unconverged masks. Writes area_curve.csv / .json, curves/<pair>.png, "
        "area_curve.png (median and quartile band across pairs; histogram of a*), "
        "analysis.json, and a W&B table run.",
    ),
    "objects": Analysis(
        "analyze.objects:run_objects_job",
        "objects alone, in pairs and all together against the sum of the parts; coverage",
        "On images with ground-truth objects (demo, synthetic, photos, voc07, coco14, "
        "data.ground_truth=): the score with only each object's region kept (the rest "
        "blurred as the method does), each pair, all, and none; gain = score − score with "
        "none; ratio = gain of a set / sum of its objects' gains (1: cumulative). Then the "
        "share of each object covered by the pair's sufficient-area mask. Writes objects.csv, "
        "objects_coverage.csv, objects.json, objects.png, analysis.json, and a W&B table run.",
    ),
    "compare": Analysis(
        "analyze.compare:run_compare_job",
        "meaningful perturbations (area set by a penalty λ₁) beside extremal perturbations",
        "For each (image, target) pair: extremal perturbations' preserve masks at "
        "analysis.compare_areas (the run's method settings) and meaningful perturbations' "
        "deletion masks (Fong & Vedaldi 2017: λ₁‖1 − m‖₁ + λ₂·TV_β(m) + class score, blur) at "
        "each λ₁ of analysis.mp_options.l1_coeffs (other MeaningfulConfig fields in "
        "analysis.mp_options; the paper's defaults). Writes compare.png (side by side, first "
        "16 pairs), compare.csv / .json (each mask's area and score; per setting the areas' "
        "mean and spread), analysis.json, and a W&B table run.",
    ),
}

ANALYZE_HEAD = """usage: lightning-extremal analyze ANALYSIS [key=value ...] [--cfg] [--overwrite]

The paper's analyses (docs/analyses.md). The data, model, method, trainer and logger keys are
those of `lightning-extremal run --help` (default: the demo images and classifier, W&B
offline); analysis.KEY=value sets the analysis' own keys, areas=[...] its area grid.

options:
  --cfg        print the composed configurations (run, then analysis) and exit
  --overwrite  clear an output folder that holds another analysis' or a run's results
  --debug      show the traceback of an error instead of one line
  -h, --help   this help (`analyze ANALYSIS --help`: that analysis)

examples:
  lightning-extremal analyze area-curve
  lightning-extremal analyze area-curve data=synthetic data.num_images=16 max_iter=100
  lightning-extremal analyze objects data=synthetic data.multi_object=true data.targets=labels
"""


def analyze_help(args: list[str]) -> str:
    """The help of ``analyze`` (the analyses and their keys), or of one analysis."""
    name = next((a for a in args if a in ANALYSES), None)
    lines = [ANALYZE_HEAD]
    chosen = {name: ANALYSES[name]} if name else ANALYSES
    lines.append("analyses:" if not name else f"{name}:")
    for key, analysis in chosen.items():
        text = analysis.details if name else analysis.summary
        lines += key_lines([(key, "", text)], sep="") if not name else textwrap.wrap(text, 96)
    lines += ["", "keys (analysis.KEY=value):"]
    lines += key_lines(describe_fields(AnalysisConfig, "analysis."))
    return "\n".join(lines)


def analysis_named(name: str) -> Analysis:
    """The analysis ``name``; a one-line error naming the allowed ones otherwise."""
    if name not in ANALYSES:
        hint = did_you_mean(name, ANALYSES)
        raise UsageError(f"unknown analysis {name!r}{hint} (analyses: {', '.join(ANALYSES)})")
    return ANALYSES[name]


def analyze_command(args: list[str]) -> int:
    """``analyze ANALYSIS [key=value ...] [--cfg] [--overwrite]``."""
    show_config, args = take_flag(args, "--cfg")
    overwrite, args = take_flag(args, "--overwrite")
    refuse_unknown_options(args, "analyze", ("--cfg", "--overwrite"))
    if not args or "=" in args[0]:
        raise UsageError(
            f"analyze needs an analysis: lightning-extremal analyze ANALYSIS [key=value ...] "
            f"(analyses: {', '.join(ANALYSES)})"
        )
    analysis = analysis_named(args[0])
    cfg, analysis_cfg = compose_analysis(args[1:])
    if show_config:
        print(config_yaml(cfg), end="")
        print(config_yaml(_Analysis(analysis_cfg)), end="")
        return 0
    module, _, function = analysis.job.partition(":")
    job = getattr(import_module(f"lightning_extremal.jobs.{module}"), function)
    job(cfg, analysis_cfg, overwrite=overwrite)
    return 0


@dataclass
class _Analysis:
    """The analysis' configuration under its ``analysis`` key, for ``--cfg``."""

    analysis: AnalysisConfig
