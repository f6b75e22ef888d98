"""The command line (cli/main): errors, and the installed console script's default demo run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_extremal.cli import main


def one_error_line(capsys) -> str:
    """The one line a refused command printed on stderr (without the program's prefix)."""
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lightning-extremal: "), err
    return lines[0][len("lightning-extremal: ") :]


def test_cli_bad_key_suggests_the_closest(capsys):
    assert main(["run", "sigmaa=3"]) == 2
    assert one_error_line(capsys) == "unknown key 'sigmaa'; did you mean 'method.sigma'?"


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["explain"],
            "unknown command 'explain' (commands: run, sweep, report, benchmark, analyze, list;",
        ),
        (["rn"], "unknown command 'rn'; did you mean 'run'?"),
        (["run", "preset=quik"], "preset='quik': no such preset config; did you mean 'quick'?"),
        (["run", "--overwrit"], "run: unknown option '--overwrit'; did you mean '--overwrite'?"),
        (["list", "prests"], "list: unknown section 'prests'; did you mean 'presets'?"),
        (["benchmark", "datset=voc07"], "unknown key 'datset'; did you mean 'dataset'?"),
        (
            ["sweep", "--count", "x", "optimizer"],
            "sweep: --count takes a positive integer; got 'x'",
        ),
    ],
)
def test_cli_unknown_names_suggest_the_closest(capsys, argv, message):
    assert main(argv) == 2
    assert one_error_line(capsys).startswith(message)


@pytest.mark.parametrize(
    "command, usage",
    [
        ("run", "usage: lightning-extremal run "),
        ("sweep", "usage: lightning-extremal sweep "),
        ("report", "usage: lightning-extremal report "),
        ("benchmark", "usage: lightning-extremal benchmark "),
        ("analyze", "usage: lightning-extremal analyze "),
        ("list", "usage: lightning-extremal list "),
    ],
)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_cli_help_of_every_command(capsys, command, usage, flag):
    assert main([command, "key=value", flag]) == 0
    out = capsys.readouterr().out
    assert out.startswith(usage)
    assert main(["help", command]) == 0
    assert capsys.readouterr().out == out


def test_run_help_lists_keys_with_defaults_groups_presets_and_options(capsys):
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--overwrite  clear an output folder that holds another configuration's results" in out
    assert "--cfg" in out and "examples:" in out
    sigma = next(line for line in out.splitlines() if line.strip().startswith("method.sigma="))
    assert sigma.split() == [
        "method.sigma=21.0",
        "mask",
        "smoothing",
        "σ,",
        "px:",
        "reference",
        "value",
    ]
    assert "  data.batch_size=8 " in out and "  logger.name=wandb " in out
    assert "  preset   fast, quick, reference" in out
    assert "  model    demo, efficientnet_lite0, resnet50, vgg16" in out
    assert "  quick " in out  # presets with their description
    from lightning_extremal.config import valid_keys

    assert all(f"  {key}=" in out for key in valid_keys())


def test_help_imports_no_torch():
    code = (
        "import sys\n"
        "from lightning_extremal.cli import main\n"
        "for command in ('run', 'sweep', 'report', 'benchmark', 'list'):\n"
        "    assert main([command, '--help']) == 0\n"
        "heavy = [m for m in ('torch', 'lightning', 'wandb', 'torchvision') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_run_cfg_prints_the_composed_config_and_runs_nothing(capsys, tmp_path):
    from dataclasses import asdict

    import yaml

    from lightning_extremal.config import compose

    args = ["preset=quick", "sigma=9", f"output_dir={tmp_path / 'out'}"]
    assert main(["run", *args, "--cfg"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == asdict(compose(args))
    assert printed["method"]["sigma"] == 9.0 and printed["method"]["max_iter"] == 50
    assert not (tmp_path / "out").exists()


def test_benchmark_cfg_prints_the_composed_config(capsys):
    import yaml

    assert main(["benchmark", "faithfulness", "limit=3", "--cfg"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert (printed["task"], printed["limit"]) == ("faithfulness", 3)


def test_run_overwrite_reaches_the_job(monkeypatch, tmp_path):
    from lightning_extremal.jobs.run import job as run_module

    calls = []
    monkeypatch.setattr(run_module, "run_job", lambda cfg, **kw: calls.append(kw) or tmp_path)
    assert main(["run", "logger=none", "--overwrite"]) == 0
    assert main(["run", "logger=none"]) == 0
    assert calls == [{"overwrite": True}, {"overwrite": False}]


@pytest.mark.parametrize("section", ["presets", "configs", "models", "sweeps"])
def test_list_sections(capsys, section):
    assert main(["list", section]) == 0
    out = capsys.readouterr().out
    expected = {
        "presets": ["quick", "reference", "fast"],
        "configs": ["paper-areas", "gpu-bf16", "wandb-online", "default"],
        "models": ["resnet50", "vit_b_16", "package.module:attr"],
        "sweeps": ["areas_smoothing", "optimizer"],
    }[section]
    assert all(name in out for name in expected), out


def test_list_without_a_section_shows_all(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(head in out for head in ("presets (", "configs (", "models (", "sweeps ("))


def run_args(tmp_path, *args):
    return ["run", "logger=none", "max_iter=2", "trainer.progress=false",
            f"output_dir={tmp_path / 'out'}", *args]  # fmt: skip


@pytest.mark.parametrize(
    "args, message",
    [
        (["areas=[2]"], "areas must be fractions in the open interval (0, 1); got 2.0"),
        (["data=/nonexistent/"], "no images found at '/nonexistent/'"),
        (["data.targets=99"], "target 99 of image 0 is out of range [0, 6)"),
        (["data.batch_size=0"], "data.batch_size must be a positive integer; got 0"),
        (["logger=nonsense"], "logger.name must be one of ['wandb', 'csv', 'tensorboard', 'none']; got 'nonsense'"),
        (["model=nonexistent:foo"], "cannot import model 'nonexistent:foo'"),
        (["model=resnet5"], "unknown model 'resnet5'; did you mean 'resnet50'?"),
        (["areas=[0.1,"], "bad value in 'method.areas=[0.1,': not valid YAML"),
        (["max_iter=abc"], "bad configuration: method.max_iter: Value 'abc'"),
        (["data.size=-3"], "data.size must be a positive integer; got -3"),
    ],
)  # fmt: skip
def test_run_refuses_bad_input_in_one_line(tmp_path, capsys, args, message):
    assert main(run_args(tmp_path, *args)) == 2
    assert one_error_line(capsys).startswith(message)


@pytest.mark.parametrize(
    "args, message",
    [
        (["model=tests.helpers:failing_factory"],
         "model 'tests.helpers:failing_factory': its factory raised RuntimeError: "
         "no weights at /models/missing.pt"),
        (["model=tests.helpers:FixedSizeNet", "data=synthetic", "data.num_images=1", "data.size=32"],
         "model 'tests.helpers:FixedSizeNet' failed on a batch of shape 2×3×32×32: "
         "AssertionError: Wrong image width! Expected 64 but got 32!"),
    ],
)  # fmt: skip
def test_a_model_that_raises_is_one_line_naming_it(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # tests.helpers importable
    assert main(run_args(tmp_path, *args)) == 2
    assert one_error_line(capsys) == message
    with pytest.raises(Exception) as error:  # --debug: the original exception's traceback
        main(["--debug", *run_args(tmp_path, *args)])
    assert isinstance(error.value.__cause__, (RuntimeError, AssertionError))


def test_a_file_that_is_not_a_model(tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_text("not a model")
    assert main(run_args(tmp_path, f"model={junk}")) == 2
    assert one_error_line(capsys).startswith(f"cannot read a model from {junk}: neither")


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="areas must be fractions"):
        main(["--debug", *run_args(tmp_path, "areas=[2]")])


def test_a_bug_is_a_traceback_not_a_message(monkeypatch, tmp_path):
    from lightning_extremal.jobs.run import job as run_module

    def broken(cfg, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(run_module, "run_job", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(run_args(tmp_path))


@pytest.mark.parametrize(
    "text, message",
    [
        ("method:\n  sigma: 3\n max_iter: [\n", r"bad\.yaml, line 3, column 2: not valid YAML: "),
        ("- areas: [0.1]\n", r"bad\.yaml: a config file must be a YAML mapping .*its top level is a list$"),
    ],
)  # fmt: skip
def test_bad_yaml_config_names_file_line_and_column(tmp_path, capsys, text, message):
    import re

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["run", f"config={path}"]) == 2
    assert re.search(message, one_error_line(capsys))


def test_bad_sweep_file_names_file_line_and_column(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("method: grid\nmetric: {name: x\nparameters: {}\n")
    assert main(["sweep", str(path), "logger=none"]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"{path}, line ") and ", column " in line and "not valid YAML" in line


@pytest.mark.slow
def test_console_script_default_demo_run(tmp_path):
    """`lightning-extremal run` with the demo model and images, as installed."""
    exe = Path(sys.executable).with_name("lightning-extremal")
    out = tmp_path / "demo"
    proc = subprocess.run(
        [
            str(exe),
            "run",
            "max_iter=3",
            "logger=none",
            f"output_dir={out}",
            "trainer.progress=false",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert str(out.resolve()) in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    from lightning_extremal.data.demo import demo_images

    _, ids, _ = demo_images()
    assert {r["image"] for r in summary["results"]} == set(ids)
    assert len(list((out / "overlays").glob("*.png"))) == len(ids)


def test_help_piped_into_head_ends_quietly():
    """`lightning-extremal run --help | head -1`: no BrokenPipeError traceback."""
    exe = Path(sys.executable).with_name("lightning-extremal")
    proc = subprocess.run(
        f"'{exe}' run --help | head -1", shell=True, capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.startswith("usage: lightning-extremal run")
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_the_usage_names_every_analysis_and_shipped_sweeps_by_name(capsys):
    from lightning_extremal.cli.analyze import ANALYSES
    from lightning_extremal.cli.help import USAGE

    line = next(x for x in USAGE.splitlines() if "lightning-extremal analyze" in x)
    assert line.split("analyze ")[1].split()[0].split("|") == list(ANALYSES)
    assert "sweep configs/" not in USAGE  # by name: works outside the checkout too
