"""The config dataclasses (config/schema) and the default YAML."""

from __future__ import annotations

from dataclasses import asdict

from omegaconf import OmegaConf

from lightning_extremal.config import RunConfig, compose, configs_dir


def test_default_yaml_matches_dataclasses():
    text = (configs_dir() / "default.yaml").read_text()
    assert OmegaConf.to_container(OmegaConf.create(text)) == OmegaConf.to_container(
        OmegaConf.structured(RunConfig)
    )


def test_run_config_roundtrip_is_plain_data():
    cfg = compose([])
    assert asdict(cfg)["model"]["name"] == "demo"
