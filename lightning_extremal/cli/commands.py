"""The subcommands: each takes its arguments (after the command name), raises
:class:`~lightning_extremal.errors.UsageError` for a bad one, and imports its job (torch,
Lightning) only once the arguments are known to be good."""

from __future__ import annotations

from ..config import compose, compose_benchmark, config_yaml
from ..errors import UsageError
from .arguments import refuse_unknown_options, take_flag, take_option


def run_command(args: list[str]) -> int:
    """``run [config=…] [GROUP=NAME] [key=value …] [--cfg] [--overwrite]``."""
    show_config, args = take_flag(args, "--cfg")
    overwrite, args = take_flag(args, "--overwrite")
    refuse_unknown_options(args, "run", ("--cfg", "--overwrite"))
    cfg = compose(args)
    if show_config:
        print(config_yaml(cfg), end="")
        return 0
    from ..jobs.run.job import run_job

    run_job(cfg, overwrite=overwrite)
    return 0


def sweep_command(args: list[str]) -> int:
    """``sweep SWEEP.yaml|NAME [--count N] [output_dir=DIR] [key=value …]``."""
    count_text, args = take_option(args, "--count")
    count = None
    if count_text is not None:
        if not count_text.isdigit() or int(count_text) < 1:
            raise UsageError(f"sweep: --count takes a positive integer; got {count_text!r}")
        count = int(count_text)
    refuse_unknown_options(args, "sweep", ("--count",))
    if not args or "=" in args[0]:
        raise UsageError(
            "sweep needs a sweep file: lightning-extremal sweep SWEEP.yaml [--count N]"
        )
    path, overrides = args[0], args[1:]
    output_dir = None
    for arg in list(overrides):
        if arg.startswith("output_dir="):
            output_dir = arg.partition("=")[2]
            overrides.remove(arg)
    compose(overrides)  # bad keys fail here, before the sweep engine is imported
    from ..jobs.sweep import run_sweep

    run_sweep(path, count=count, overrides=overrides, output_dir=output_dir)
    return 0


def report_command(args: list[str]) -> int:
    """``report RUN_DIR [--out FILE.html]``."""
    out, args = take_option(args, "--out")
    refuse_unknown_options(args, "report", ("--out",))
    if len(args) != 1:
        raise UsageError("report needs one run directory: lightning-extremal report RUN_DIR")
    from ..jobs.report.job import write_report

    path = write_report(args[0], out)
    print(f"lightning-extremal: report in {path.resolve()}")
    return 0


def benchmark_command(args: list[str]) -> int:
    """``benchmark [TASK] [config=PATH] [key=value …] [--cfg]``: the configuration composed from
    ``configs/benchmark/default.yaml`` (bad keys and values fail before any work), then the job."""
    show_config, args = take_flag(args, "--cfg")
    refuse_unknown_options(args, "benchmark", ("--cfg",))
    cfg = compose_benchmark(args)
    if show_config:
        print(config_yaml(cfg), end="")
        return 0
    from ..jobs.benchmark import run_benchmark

    run_benchmark(cfg)
    return 0
