"""Command line: ``lightning-extremal run|sweep|report|benchmark ...``."""

from __future__ import annotations

import sys

from ..config import compose, compose_benchmark
from ..jobs.benchmark import run_benchmark
from ..jobs.report import write_report
from ..jobs.run import run_job
from ..jobs.sweep import run_sweep

USAGE = """usage: lightning-extremal run [config=NAME|PATH] [GROUP=NAME] [key=value ...]
       lightning-extremal sweep SWEEP.yaml [--count N] [key=value ...]
       lightning-extremal report RUN_DIR [--out FILE.html]
       lightning-extremal benchmark pointing|faithfulness [dataset=synthetic|voc07|coco14] [config=PATH] [key=value ...]

Explain images with a classifier by extremal perturbations; writes masks.pt, overlays/*.png
and summary.json under the output directory it prints.

  lightning-extremal run                              # demo images, demo classifier
  lightning-extremal run areas=[0.05,0.1,0.2] max_iter=300
  lightning-extremal run model=resnet50 data=photos/ data.targets=top1
  lightning-extremal run preset=quick logger=csv
  lightning-extremal run method=channel layer=features.block5   # top channels + diff figures
  lightning-extremal run method=layer-spatial layer=features.block5
  lightning-extremal run method=invert layer=features.block3     # feature inversions
  lightning-extremal run method=diff                             # + image-pair channel diffs
  lightning-extremal sweep configs/sweeps/areas_smoothing.yaml max_iter=100
  lightning-extremal report outputs/run-20250101-120000

Keys: any field of the config dataclasses as group.field (e.g. method.sigma=15) or, when
unique, the bare field (sigma=15). GROUP=NAME merges configs/GROUP/NAME.yaml; model=, data=
and logger= also take a model name, an image folder/glob and a logger name, and method= a
method kind (input | channel | layer-spatial | invert | diff; layer= a module name, default
the last spatial feature map).

sweep runs a W&B sweep file here, without a W&B server (trials: one `run` each, with the
sweep's parameters, then the key=value overrides; output_dir= sets the sweep's folder);
report writes RUN_DIR/report.html, one self-contained page.
benchmark runs the paper's pointing or faithfulness benchmark (its keys and defaults:
configs/benchmark/default.yaml; config=PATH merges a YAML file of them before the key=value ones).
"""


def _error(message: str) -> int:
    print(f"lightning-extremal: {message}", file=sys.stderr)
    return 2


def _run(args: list[str]) -> int:
    try:
        cfg = compose(args)
    except ValueError as error:
        return _error(str(error))
    run_job(cfg)
    return 0


def _option(args: list[str], name: str) -> tuple[str | None, list[str]]:
    """Take ``--name VALUE`` or ``--name=VALUE`` out of ``args``."""
    rest, value = [], None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == name:
            if i + 1 >= len(args):
                raise ValueError(f"{name} needs a value")
            value, i = args[i + 1], i + 2
            continue
        if arg.startswith(name + "="):
            value = arg.partition("=")[2]
        else:
            rest.append(arg)
        i += 1
    return value, rest


def _sweep(args: list[str]) -> int:
    try:
        count_text, args = _option(args, "--count")
        count = int(count_text) if count_text is not None else None
    except ValueError as error:
        return _error(f"sweep: {error} (--count takes a positive integer)")
    if not args or "=" in args[0]:
        return _error("sweep needs a sweep file: lightning-extremal sweep SWEEP.yaml [--count N]")
    path, overrides = args[0], args[1:]
    output_dir = None
    for arg in list(overrides):
        if arg.startswith("output_dir="):
            output_dir = arg.partition("=")[2]
            overrides.remove(arg)
    try:
        run_sweep(path, count=count, overrides=overrides, output_dir=output_dir)
    except ValueError as error:
        return _error(str(error))
    return 0


def _report(args: list[str]) -> int:
    try:
        out, args = _option(args, "--out")
    except ValueError as error:
        return _error(f"report: {error}")
    if len(args) != 1:
        return _error("report needs one run directory: lightning-extremal report RUN_DIR")
    try:
        path = write_report(args[0], out)
    except ValueError as error:
        return _error(str(error))
    print(f"lightning-extremal: report in {path.resolve()}")
    return 0


def _benchmark(args: list[str]) -> int:
    """``benchmark [TASK] [config=PATH] [key=value ...]``: the configuration composed from
    ``configs/benchmark/default.yaml`` (bad keys and values fail before any work), then the job."""
    try:
        run_benchmark(compose_benchmark(args))
    except ValueError as error:
        print(f"lightning-extremal benchmark: {error}", file=sys.stderr)
        return 2
    return 0


COMMANDS = {"run": _run, "sweep": _sweep, "report": _report, "benchmark": _benchmark}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        print(
            f"unknown command {command!r}; available: {', '.join(COMMANDS)}\n\n{USAGE}",
            file=sys.stderr,
        )
        return 2
    return COMMANDS[command](args)
