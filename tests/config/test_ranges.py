"""Every numeric option is range-checked before any work (#24 item 5): a value the method
cannot do (not finite, out of range, the wrong count) is one line naming the key and the
allowed range, never a failure in the optimiser later."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from lightning_extremal.cli import main
from lightning_extremal.config import (
    AnalysisConfig,
    BenchmarkConfig,
    InversionConfig,
    LoggerConfig,
    MeaningfulConfig,
    RunConfig,
    validate_analysis,
    validate_benchmark,
    validate_meaningful,
)
from lightning_extremal.jobs.run.job import check_config

INF, NAN = math.inf, math.nan


def run_config(group: str, **values) -> RunConfig:
    cfg = RunConfig()
    return replace(cfg, **{group: replace(getattr(cfg, group), **values)})


@pytest.mark.parametrize(
    "group, values, message",
    [
        ("method", {"sigma": INF}, "sigma must be a finite number > 0; got inf"),
        ("method", {"sigma": 0.01}, "sigma must be ≥ step/2 = 3.5 px with smoothing=maxconv"),
        ("method", {"coldness": INF}, "coldness must be a finite number > 0; got inf"),
        ("method", {"coldness": 0}, "coldness must be a finite number > 0; got 0"),
        ("method", {"lambda0": INF}, "lambda0 must be a number in [0, 1e+30]; got inf"),
        ("method", {"lambda0": NAN}, "lambda0 must be a number in [0, 1e+30]; got nan"),
        ("method", {"lambda_final": INF}, "lambda_final must be a number in (0, 1e+30] or null"),
        ("method", {"lambda_growth": INF}, "lambda_growth must be a finite number > 0; got inf"),
        ("method", {"lambda_growth": 2.0, "lambda_final": None, "max_iter": 200},
         "lambda_growth=2.0 makes λ = lambda0·growth^t exceed 1e+30 by step 199"),
        ("method", {"adam_betas": [0.9]}, "adam_betas must be two numbers in [0, 1); got [0.9]"),
        ("method", {"adam_betas": [0.9, 1.0]}, "adam_betas must be two numbers in [0, 1)"),
        ("method", {"adam_betas": [0.9, NAN]}, "adam_betas must be two numbers in [0, 1)"),
        ("method", {"lr": INF}, "lr must be a finite number > 0; got inf"),
        ("method", {"max_blur": INF}, "max_blur must be a finite number > 0; got inf"),
        ("method", {"max_blur": -1.0, "perturbation": "fade"}, "max_blur must be a finite"),
        ("method", {"momentum": 1.0}, "momentum must be a number in [0, 1); got 1.0"),
        ("method", {"dampening": "a"}, "dampening must be a number in [0, 1); got 'a'"),
        ("method", {"init": NAN}, "init must be a number in [0, 1]; got nan"),
        ("method", {"num_levels": 1}, "num_levels must be an integer ≥ 2; got 1"),
        ("method", {"layer_sigma": INF, "kind": "channel"}, "layer_sigma must be a finite number > 0"),
        ("trainer", {"seed": -1}, "trainer.seed must be an integer in [0, 4294967295]; got -1"),
        ("trainer", {"seed": 2**32}, "trainer.seed must be an integer in [0, 4294967295]"),
        ("trainer", {"log_every_n_steps": 0}, "trainer.log_every_n_steps must be a positive integer"),
        ("data", {"synthetic_seed": -5}, "data.synthetic_seed must be an integer ≥ 0; got -5"),
        ("logger", {"early_stop_tol": INF}, "logger.early_stop_tol must be null or a finite number > 0"),
        ("inversion", {"invert_lr": INF}, "inversion.invert_lr must be a finite number > 0; got inf"),
        ("inversion", {"tv_weight": INF}, "inversion.tv_weight must be a finite number ≥ 0; got inf"),
    ],
)  # fmt: skip
def test_a_run_option_out_of_range_is_refused_naming_key_and_range(group, values, message):
    with pytest.raises(ValueError) as error:
        check_config(run_config(group, **values))
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "validate, cfg, message",
    [
        (validate_meaningful, replace(MeaningfulConfig(), lr=INF), "lr must be a finite number > 0"),
        (validate_meaningful, replace(MeaningfulConfig(), l1_coeffs=[INF]),
         "each of l1_coeffs must be a finite number ≥ 0; got inf"),
        (validate_meaningful, replace(MeaningfulConfig(), blur_sigma=NAN), "blur_sigma must be a finite number ≥ 0"),
        (validate_analysis, replace(AnalysisConfig(), preserve_fraction=INF),
         "analysis.preserve_fraction must be a finite number > 0; got inf"),
        (validate_benchmark, replace(BenchmarkConfig(), seed=-1), "seed must be an integer in [0, 4294967295]"),
        (validate_benchmark, replace(BenchmarkConfig(), threads=0), "threads must be a positive integer or null"),
        (validate_benchmark, replace(BenchmarkConfig(), synthetic_size=0), "synthetic_size must be a positive integer"),
    ],
)  # fmt: skip
def test_other_options_out_of_range_are_refused(validate, cfg, message):
    with pytest.raises(ValueError) as error:
        validate(cfg)
    assert str(error.value).startswith(message)


def test_the_defaults_and_the_edges_of_each_range_pass():
    edges = {"sigma": 3.5, "coldness": 1e4, "lambda0": 0.0, "lambda_final": None,
             "adam_betas": [0.0, 0.999], "momentum": 0.0, "init": 0.0}  # fmt: skip
    check_config(RunConfig())
    check_config(run_config("method", **edges))
    check_config(run_config("method", sigma=0.5, smoothing="gaussian"))  # no grid to cover
    check_config(run_config("trainer", seed=2**32 - 1))
    check_config(replace(RunConfig(), logger=LoggerConfig(), inversion=InversionConfig()))


@pytest.mark.parametrize(
    "override, message",
    [
        ("sigma=inf", "sigma must be a finite number > 0; got inf"),
        ("coldness=inf", "coldness must be a finite number > 0; got inf"),
        ("lambda0=inf", "lambda0 must be a number in [0, 1e+30]; got inf"),
        ("adam_betas=[0.9]", "adam_betas must be two numbers in [0, 1); got [0.9]"),
        ("sigma=0.01", "sigma must be ≥ step/2 = 3.5 px"),
    ],
)
def test_the_cli_refuses_them_in_one_line_before_any_work(tmp_path, capsys, override, message):
    out = tmp_path / "out"
    assert main(["run", "logger=none", f"output_dir={out}", override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"lightning-extremal: {message}")
    assert not out.exists()
