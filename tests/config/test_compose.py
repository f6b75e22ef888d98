"""Config composition (config/compose): aliases, groups, overrides and their errors."""

from __future__ import annotations

import pytest

from lightning_extremal.config import compose


def test_compose_aliases_groups_and_overrides():
    cfg = compose(
        ["areas=[0.05,0.2]", "method.sigma=9", "logger=csv", "preset=quick", "max_iter=7"]
    )
    assert cfg.method.areas == [0.05, 0.2]  # preset=quick sets [0.1, 0.2]; later args win
    assert cfg.method.sigma == 9.0
    assert cfg.logger.name == "csv"
    assert cfg.method.max_iter == 7
    assert compose(["model=resnet50"]).model.weights == "IMAGENET1K_V1"  # from configs/model/
    assert compose(["model=alexnet"]).model.name == "alexnet"  # no yaml: the model name


@pytest.mark.parametrize(
    "arg, message",
    [
        ("aeras=[0.1]", r"^unknown key 'aeras'; did you mean 'method.areas'\?$"),
        ("method.nope=1", "^unknown key 'method.nope'"),
        ("xyzzy=1", "^unknown key 'xyzzy'; `lightning-extremal run --help` lists the keys$"),
        ("max_iter=abc", "^bad configuration: method.max_iter: Value 'abc'"),
        ("areas=[0.1,", r"^bad value in 'method.areas=\[0.1,': not valid YAML"),
        ("preset=quik", "^preset='quik': no such preset config; did you mean 'quick'\\?"),
        ("method=nonexistent", "no such method config.*reference"),
        ("noequals", "key=value"),
    ],
)
def test_compose_rejects_bad_keys(arg, message):
    with pytest.raises(ValueError, match=message):
        compose([arg])


def test_compose_method_kind():
    cfg = compose(["method=channel", "layer=features.block5", "areas=[5]"])
    assert (cfg.method.kind, cfg.method.layer, cfg.method.areas) == (
        "channel",
        "features.block5",
        [5.0],
    )
    assert compose(["method=reference", "kind=diff"]).method.kind == "diff"
    with pytest.raises(ValueError, match="no such method config.*method kind.*layer-spatial"):
        compose(["method=neurons"])


@pytest.mark.parametrize(
    "text, message",
    [
        ("method:\n  sigma: 3\n max_iter: [\n", r"bad\.yaml, line 3, column 2: not valid YAML"),
        ("method:\n  sigma: 3\n  sigma: 4\n", r"bad\.yaml, line 3, column 3: .*duplicate key"),
        ("- method\n- data\n", r"bad\.yaml: a config file must be a YAML mapping .*a list$"),
    ],
)
def test_compose_names_file_line_and_column_of_a_bad_yaml(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        compose([f"config={path}"])
    assert "\n" not in str(error.value)


def test_compose_unknown_key_in_a_file_suggests_the_closest(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("method:\n  sigmaa: 3\n")
    with pytest.raises(ValueError, match=r"method\.sigmaa: .*did you mean 'method\.sigma'\?"):
        compose([f"config={path}"])


def test_config_yaml_holds_what_config_json_records():
    from dataclasses import asdict

    from omegaconf import OmegaConf

    from lightning_extremal.config import config_yaml

    cfg = compose(["preset=quick", "sigma=9"])
    assert OmegaConf.to_container(OmegaConf.create(config_yaml(cfg))) == asdict(cfg)
