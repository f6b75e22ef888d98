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
        ("aeras=[0.1]", "unknown config key 'aeras'.*method.areas"),
        ("method.nope=1", "unknown config key 'method.nope'"),
        ("max_iter=abc", "max_iter"),
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
