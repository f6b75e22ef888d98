"""Every YAML under configs/ composes into a valid configuration (lightning-hydra-template's
habit): a group file that no longer matches the dataclasses fails here, not in a user's run."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_extremal.config import (
    GROUPS,
    RunConfig,
    compose,
    configs_dir,
    validate_inversion,
    validate_logger,
    validate_method,
    validate_run_options,
)
from lightning_extremal.jobs.sweep import load_sweep

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def _group_files() -> list[tuple[str, str]]:
    return [
        (group, path.stem) for group in GROUPS for path in sorted((CONFIGS / group).glob("*.yaml"))
    ]


def _validate(cfg: RunConfig) -> None:
    validate_method(cfg.method)
    validate_logger(cfg.logger)
    validate_inversion(cfg.inversion)
    validate_run_options(cfg.trainer.precision, cfg.trainer.compile, cfg.trainer.channels_last)


def test_every_yaml_is_covered_by_one_of_these_tests():
    covered = {f"{g}/{n}.yaml" for g, n in _group_files()}
    covered |= {"default.yaml", "benchmark/default.yaml"}
    covered |= {f"sweeps/{p.name}" for p in (CONFIGS / "sweeps").glob("*.yaml")}
    found = {p.relative_to(CONFIGS).as_posix() for p in CONFIGS.rglob("*.yaml")}
    assert found == covered
    # The installed configs are these files.
    assert sorted(p.name for p in configs_dir().iterdir() if p.name.endswith(".yaml")) == sorted(
        p.name for p in CONFIGS.glob("*.yaml")
    )


@pytest.mark.parametrize(("group", "name"), _group_files(), ids="/".join)
def test_group_file_composes_and_validates(group, name):
    cfg = compose([f"{group}={name}"])
    assert isinstance(cfg, RunConfig)
    _validate(cfg)


def test_default_yaml_composes_to_the_dataclass_defaults():
    assert compose(["config=default"]) == RunConfig()


@pytest.mark.parametrize("path", sorted((CONFIGS / "sweeps").glob("*.yaml")), ids=lambda p: p.stem)
def test_sweep_file_loads_and_its_parameters_compose(path):
    sweep = load_sweep(path)
    for key, spec in sweep["parameters"].items():
        values = spec.get("values") or [spec.get("value", spec.get("min"))]
        for value in values:
            text = value if isinstance(value, str) else str(value).replace(" ", "")
            _validate(compose([f"{key}={text}"]))
