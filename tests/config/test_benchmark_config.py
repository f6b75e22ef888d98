"""The benchmark's configuration: BenchmarkConfig, configs/benchmark/default.yaml and its composition."""

from __future__ import annotations

from dataclasses import asdict

import pytest
from omegaconf import OmegaConf

from lightning_extremal.config import (
    BENCHMARK_FILE,
    BENCHMARK_METHODS,
    BenchmarkConfig,
    benchmark_keys,
    compose,
    compose_benchmark,
    configs_dir,
)


def test_default_methods_are_the_evaluation_methods():
    # config spells the list out (it imports nothing from the project): keep it in step.
    from lightning_extremal.evaluation.baselines import METHODS

    assert list(BENCHMARK_METHODS) == list(METHODS)
    # the default is the paper's table: meaningful perturbations are opt-in
    assert BenchmarkConfig().methods == [m for m in METHODS if m != "meaningful_perturbation"]


def test_benchmark_yaml_matches_the_dataclass():
    text = (configs_dir() / BENCHMARK_FILE).read_text()
    assert OmegaConf.to_container(OmegaConf.create(text)) == OmegaConf.to_container(
        OmegaConf.structured(BenchmarkConfig)
    )
    assert compose_benchmark([]) == BenchmarkConfig()


def test_benchmark_jobs_module_reexports_the_config():
    from lightning_extremal.jobs import benchmark

    assert benchmark.BenchmarkConfig is BenchmarkConfig
    assert callable(benchmark.run_benchmark)


def test_task_positional_and_overrides(tmp_path):
    cfg = compose_benchmark(["faithfulness", "methods=[ep,gradcam]", "limit=4", "areas=[0.1]"])
    assert cfg.task == "faithfulness" and cfg.limit == 4 and cfg.areas == [0.1]
    assert cfg.methods == ["ep", "gradcam"]  # aliases are resolved by the job, not by config
    assert compose_benchmark(["faithfulness", "task=pointing"]).task == "pointing"
    assert compose_benchmark(["ep_options.sigma=15"]).ep_options == {"sigma": 15}
    # config=PATH merges a file over configs/benchmark/default.yaml; key=value wins over it.
    path = tmp_path / "bench.yaml"
    path.write_text("dataset: voc07\nroot: /data/voc\nchunk_size: 4\n")
    cfg = compose_benchmark(["pointing", f"config={path}", "chunk_size=2"])
    assert (cfg.dataset, cfg.root, cfg.chunk_size) == ("voc07", "/data/voc", 2)


def test_prepare_resolves_method_aliases():
    from lightning_extremal.jobs.benchmark import prepare

    cfg = compose_benchmark(["methods=[ep,gradcam,center]"])
    assert prepare(cfg).methods == ["extremal_perturbation", "grad_cam", "center"]
    with pytest.raises(ValueError, match="unknown method 'nope'; valid: center, gradient"):
        prepare(compose_benchmark(["methods=[gradient,nope]"]))


@pytest.mark.parametrize(
    "args, message",
    [
        (["datset=voc07"], r"^unknown key 'datset'; did you mean 'dataset'\?$"),
        (["pointing", "nope"], r"^arguments must look like key=value; got 'nope'"),
        (["chunk_size=abc"], r"^bad benchmark configuration: chunk_size: Value 'abc'"),
        (
            ["dataset=imagenet"],
            r"^dataset must be one of \['synthetic', 'photos', 'voc07', 'coco14'\]",
        ),
        (["wrongtask"], r"^task must be one of \['pointing', 'faithfulness'\]; got 'wrongtask'"),
        (["dataset=voc07"], r"^dataset=voc07 needs root=PATH"),
        (["methods=[]"], r"^methods must name at least one of \['center'"),
        (["chunk_size=0"], r"^chunk_size must be a positive integer; got 0"),
        (["config=/no/such.yaml"], r"^config='/no/such.yaml': no such file"),
    ],
)
def test_compose_benchmark_errors(args, message):
    with pytest.raises(ValueError, match=message) as error:
        compose_benchmark(args)
    assert "\n" not in str(error.value)  # one line


def test_unknown_key_lists_every_key():
    with pytest.raises(ValueError) as error:
        compose_benchmark(["pointing", "nosuchkey=1"])
    assert str(error.value) == (
        f"unknown key 'nosuchkey'; valid keys: {', '.join(benchmark_keys())} (and config=PATH)"
    )
    assert benchmark_keys()[-1] == "sanity_mode"


def test_bad_key_in_a_config_file(tmp_path):
    path = tmp_path / "bench.yaml"
    path.write_text("datset: voc07\n")
    with pytest.raises(ValueError, match="bad benchmark configuration: .*datset"):
        compose_benchmark([f"config={path}"])


def test_benchmark_yaml_is_not_a_run_config():
    with pytest.raises(
        ValueError, match=r"config='benchmark' is neither a file nor a name in configs/"
    ):
        compose(["config=benchmark"])


def test_cli_benchmark_errors(capsys):
    from lightning_extremal.cli import main

    assert main(["benchmark", "pointing", "nosuchkey=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lightning-extremal: unknown key 'nosuchkey'; valid keys:")
    assert main(["benchmark", "pointing", "methods=[nope]"]) == 2
    assert "lightning-extremal: unknown method 'nope'" in capsys.readouterr().err


def test_cli_benchmark_runs_from_the_composed_config(tmp_path, capsys):
    from lightning_extremal.cli import main

    out = tmp_path / "bench"
    args = [
        "benchmark", "pointing", "model=demo", "methods=[center]", "synthetic_single=2",
        "synthetic_multi=0", "logger=none", f"output_dir={out}",
    ]  # fmt: skip
    assert main(args) == 0
    assert "| Center |" in capsys.readouterr().out
    assert (out / "pointing.csv").is_file()
    assert asdict(compose_benchmark(args[1:]))["methods"] == ["center"]
