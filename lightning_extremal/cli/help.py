"""The help of ``lightning-extremal`` and of each subcommand, built from the config dataclasses
(every key with its default and comment) and the YAML files of ``configs/``. Nothing here
imports torch: ``--help`` answers at once."""

from __future__ import annotations

import textwrap
from dataclasses import fields

from ..config import BenchmarkConfig, RunConfig, describe_fields
from .catalog import GROUP_VALUES, described, group_names

USAGE = """usage: lightning-extremal run [config=NAME|PATH] [GROUP=NAME] [key=value ...] [--cfg] [--overwrite]
       lightning-extremal sweep SWEEP.yaml [--count N] [key=value ...]
       lightning-extremal report RUN_DIR [--out FILE.html]
       lightning-extremal benchmark pointing|faithfulness [dataset=synthetic|photos|voc07|coco14] [config=PATH] [key=value ...] [--cfg]
       lightning-extremal analyze area-curve|objects|compare [key=value ...] [--cfg] [--overwrite]
       lightning-extremal list [presets|configs|models|sweeps]

Explain images with a classifier by extremal perturbations; writes masks.pt, overlays/*.png
and summary.json under the output directory it prints.

  lightning-extremal run                              # demo images, demo classifier
  lightning-extremal run areas=[0.05,0.1,0.2] max_iter=300
  lightning-extremal run model=resnet50 data=photos/ data.targets=top1
  lightning-extremal run preset=quick logger=csv
  lightning-extremal run preset=quick --cfg           # print the composed configuration
  lightning-extremal run method=channel layer=features.block5   # top channels + diff figures
  lightning-extremal run method=layer-spatial layer=features.block5
  lightning-extremal run method=invert layer=features.block3     # feature inversions
  lightning-extremal run method=diff                             # + image-pair channel diffs
  lightning-extremal sweep areas_smoothing max_iter=100
  lightning-extremal report outputs/run-20250101-120000
  lightning-extremal list presets

Keys: any field of the config dataclasses as group.field (e.g. method.sigma=15) or, when
unique, the bare field (sigma=15). GROUP=NAME merges configs/GROUP/NAME.yaml; model=, data=
and logger= also take a model name, an image folder/glob and a logger name, and method= a
method kind (input | channel | layer-spatial | invert | diff; layer= a module name, default
the last spatial feature map).

sweep runs a W&B sweep file here, without a W&B server (trials: one `run` each, with the
sweep's parameters, then the key=value overrides; output_dir= sets the sweep's folder);
report writes RUN_DIR/report.html (then report-2.html, … per 100 pairs) with its pictures in
RUN_DIR/report_files/.
benchmark runs the paper's pointing or faithfulness benchmark (its keys and defaults:
configs/benchmark/default.yaml; config=PATH merges a YAML file of them before the key=value ones).
analyze runs one of the paper's analyses (area curve and sufficient area; objects' cumulative
contributions), with the run's keys plus analysis.KEY=value (docs/analyses.md).
list shows the presets, configs, models and sweep files by name.

`lightning-extremal COMMAND --help` lists a command's keys with their defaults. A bad argument
is one line on stderr and exit status 2; --debug shows the traceback instead.
"""

#: Key column width of the key lists.
KEY_WIDTH = 34
WIDTH = 100


def key_lines(rows: list[tuple[str, str, str]], sep: str = "=") -> list[str]:
    """``  key=default   comment`` lines, the comment wrapped under its column."""
    lines = []
    indent = " " * (KEY_WIDTH + 2)
    for key, default, comment in rows:
        head = f"  {key}{sep}{default}"
        if len(head) > KEY_WIDTH:
            lines.append(head)
            head = ""
        text = f"{head:<{KEY_WIDTH}}  {comment}".rstrip()
        lines += textwrap.wrap(text, WIDTH, subsequent_indent=indent) or [""]
    return lines


def run_keys() -> list[str]:
    """Every key of a run, grouped by config group, with its default and comment."""
    lines = []
    for group in fields(RunConfig):
        if group.name == "output_dir":
            continue
        schema = group.default_factory  # type: ignore[misc]
        doc = (schema.__doc__ or "").strip().splitlines()[0]
        lines += ["", f"{group.name}: {doc}"]
        lines += key_lines(describe_fields(schema, f"{group.name}."))
    output = next(f for f in describe_fields(RunConfig) if f[0] == "output_dir")
    return [*lines, "", *key_lines([output])]


def group_lines() -> list[str]:
    """``GROUP  name, name; or …`` for each group and the top-level configs."""
    lines = []
    for group, names in group_names().items():
        extra = GROUP_VALUES.get(group, "a YAML file's path" if group == "config" else "")
        text = f"  {group:<9}{', '.join(names)}" + (f"; {extra}" if extra else "")
        lines += textwrap.wrap(text, WIDTH, subsequent_indent=" " * 11)
    return lines


def named_lines(group: str) -> list[str]:
    """``  name   first sentence of its comment`` for each YAML file of ``group``."""
    return key_lines([(name, "", text) for name, text in described(group)], sep="")


RUN_HEAD = """usage: lightning-extremal run [config=NAME|PATH] [GROUP=NAME ...] [key=value ...] [--cfg] [--overwrite]

Explain images with a classifier by extremal perturbations: masks.pt, overlays/*.png and
summary.json in the output folder it prints. Files (config=, GROUP=) are merged in the order
given, then the key=value overrides, so an explicit value wins over a preset.

options:
  --cfg        print the composed configuration (YAML: what config.json records) and exit
  --overwrite  clear an output folder that holds another configuration's results, or write beside files
               of yours (otherwise the run refuses); deletes only files jobs listed as written
  --debug      show the traceback of an error instead of one line
  -h, --help   this help

examples:
  lightning-extremal run                              # demo images, demo classifier
  lightning-extremal run preset=quick logger=csv
  lightning-extremal run model=resnet50 data=photos/ areas=[0.05,0.1] max_iter=300
  lightning-extremal run method=channel layer=features.block5
  lightning-extremal run preset=reference sigma=15 --cfg

groups (GROUP=NAME merges configs/GROUP/NAME.yaml; config=NAME a top-level one):"""


def run_help() -> str:
    lines = [RUN_HEAD, *group_lines(), "", "presets (preset=NAME):", *named_lines("preset")]
    lines += [
        "",
        "keys (group.field=value, or field=value when the field name is unique to one group;",
        "values are YAML: areas=[0.05,0.1], layer=null, jitter=false):",
        *run_keys(),
    ]
    return "\n".join(lines)


SWEEP_HELP = """usage: lightning-extremal sweep SWEEP.yaml|NAME [--count N] [output_dir=DIR] [key=value ...]

Run a W&B sweep file here, without a W&B server: W&B's own search engine proposes each trial's
parameters, each trial is one `lightning-extremal run` with them and then the key=value
overrides (any key of `lightning-extremal run --help`), and a table of the trials sorted by the
sweep's metric is printed and written to sweep_summary.csv. The parameters of a sweep file
are run keys (method.lr, areas, …). Online, the same file works with `wandb sweep` + `wandb agent`.

options:
  --count N        run N trials (default: every grid point; random and bayes need it)
  output_dir=DIR   the sweep's folder (default outputs/sweep-<timestamp>)
  --debug          show the traceback of an error instead of one line
  -h, --help       this help

examples:
  lightning-extremal sweep areas_smoothing max_iter=100 logger=none
  lightning-extremal sweep optimizer --count 8

shipped sweeps (configs/sweeps/NAME.yaml, by NAME or path):"""

REPORT_HELP = """usage: lightning-extremal report RUN_DIR [--out FILE.html]

Write an HTML report of a finished (or partly finished) run from what its manifest.json lists:
RUN_DIR/report.html (unless --out), report-2.html, … per 100 image pairs, the pictures in
report_files/ beside it. A summary first (histograms of area error, reward and IoU; the masks
that did not converge; reward and area curves across pairs), then a sortable, filterable index.
A layer run (method=channel|layer-spatial|invert|diff) gets one page: its table and figures;
an analyze folder, its analysis.

options:
  --out FILE.html  where to write the page
  --debug          show the traceback of an error instead of one line
  -h, --help       this help

example:
  lightning-extremal report outputs/run-20250101-120000"""

BENCHMARK_HEAD = """usage: lightning-extremal benchmark [pointing|faithfulness] [config=PATH] [key=value ...] [--cfg]

The paper's benchmarks: pointing game (and IoU) or faithfulness (deletion/insertion AUC and
the model-randomisation sanity check) of extremal perturbations and the baselines, on the
synthetic set, VOC 2007 or COCO 2014 (local copies: root=…; nothing is downloaded). Defaults:
configs/benchmark/default.yaml; config=PATH merges a YAML file of keys before the key=value ones.

options:
  --cfg        print the composed benchmark configuration (YAML) and exit
  --debug      show the traceback of an error instead of one line
  -h, --help   this help

examples:
  lightning-extremal benchmark pointing methods=[center,grad_cam,ep] limit=20
  lightning-extremal benchmark faithfulness dataset=voc07 root=~/data/voc model=vgg16

keys:"""


def benchmark_help() -> str:
    return "\n".join([BENCHMARK_HEAD, *key_lines(describe_fields(BenchmarkConfig))])


LIST_HELP = """usage: lightning-extremal list [presets|configs|models|sweeps]

Show by name what the other commands accept (no section: all of them):
  presets   configs/preset/*.yaml, for `run preset=NAME`
  configs   the YAML files of every group (model, data, method, trainer, logger, preset) and config=NAME
  models    configs/model/*.yaml and torchvision's classifier names, for `run model=NAME`
  sweeps    configs/sweeps/*.yaml, for `sweep NAME`"""


def command_help(command: str) -> str:
    """The help text of ``command`` (one of the subcommands)."""
    if command == "run":
        return run_help()
    if command == "sweep":
        return "\n".join([SWEEP_HELP, *named_lines("sweeps")])
    if command == "report":
        return REPORT_HELP
    if command == "benchmark":
        return benchmark_help()
    return LIST_HELP
