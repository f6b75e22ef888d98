"""What ``configs/`` offers, by name: the YAML files of each group with the first sentence of
their leading comment, the presets, the sweeps, and the models ``model.name`` accepts."""

from __future__ import annotations

from ..config import GROUPS, available_names, configs_dir

#: What a group's value may be besides the names of its YAML files.
GROUP_VALUES = {
    "model": "or efficientnet_lite0 (the real extra), a torchvision classifier name, a model file, package.module:attr",
    "data": "or demo | synthetic | photos | voc07 | coco14 (data.root=…), an image folder or a glob",
    "method": "or a kind: input | channel | layer-spatial | invert | diff",
    "logger": "or wandb | csv | tensorboard | none",
    "preset": "may set keys of any group",
}


def description(group: str, name: str) -> str:
    """The first sentence of the leading comment of ``configs/GROUP/NAME.yaml`` ("" if none)."""
    text = (configs_dir() / group / f"{name}.yaml").read_text()
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    comment = " ".join(lines)
    end = comment.find(". ")
    return comment if end < 0 else comment[: end + 1]


def group_names() -> dict[str, list[str]]:
    """Every group of a run (and ``config``, the top-level files) with its YAML names."""
    return {**{g: available_names(g) for g in GROUPS}, "config": available_names(".")}


def described(group: str) -> list[tuple[str, str]]:
    """(name, description) of each YAML file of ``group``."""
    return [(name, description(group, name)) for name in available_names(group)]


def torchvision_classifiers() -> list[str]:
    """The torchvision classifier names ``model.name`` accepts (imports torchvision)."""
    from ..data.models import torchvision_classifiers as names

    return names()
