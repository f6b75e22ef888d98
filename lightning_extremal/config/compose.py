"""Composing a :class:`~.schema.RunConfig` (and the benchmark's
:class:`~.schema.BenchmarkConfig`) from the YAML files of ``configs/`` and ``key=value``
overrides (OmegaConf)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from .schema import METHOD_KINDS, BenchmarkConfig, RunConfig
from .validation import validate_benchmark

#: ``GROUP=value`` with a scalar value sets this field when no ``configs/GROUP/value.yaml`` exists.
#: (``method=KIND`` likewise sets ``method.kind`` when KIND is one of :data:`METHOD_KINDS`.)
GROUP_PRIMARY = {"model": "name", "data": "source", "logger": "name"}


#: Groups that can be set from ``configs/GROUP/NAME.yaml`` (``preset`` may touch any group).
GROUPS = ("model", "data", "method", "trainer", "logger", "preset")


#: The benchmark's defaults, in their own folder of ``configs/`` (like the sweeps), so that
#: ``config=NAME`` of ``lightning-extremal run`` never takes them for a run config.
BENCHMARK_FILE = "benchmark/default.yaml"


def configs_dir():
    """The packaged ``configs/`` folder (a Traversable; works installed or from a checkout)."""
    from importlib.resources import files

    return files("lightning_extremal.configs")


def leaf_aliases() -> dict[str, str]:
    """Field names that appear in exactly one group, usable without the group prefix."""
    seen: dict[str, list[str]] = {}
    for group in fields(RunConfig):
        if group.name == "output_dir":
            continue
        for leaf in fields(group.default_factory()):  # type: ignore[misc]
            seen.setdefault(leaf.name, []).append(f"{group.name}.{leaf.name}")
    return {name: paths[0] for name, paths in seen.items() if len(paths) == 1}


def valid_keys() -> list[str]:
    """Every dotted key of :class:`RunConfig` (for error messages)."""
    keys = ["output_dir"]
    for group in fields(RunConfig):
        if group.name != "output_dir":
            keys += [f"{group.name}.{f.name}" for f in fields(group.default_factory())]  # type: ignore[misc]
    return keys


def _group_file(group: str, name: str):
    path = configs_dir() / group / f"{name}.yaml"
    return path if path.is_file() else None


def _available(group: str) -> list[str]:
    folder = configs_dir() / group
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _key_value(arg: str) -> tuple[str, str]:
    """``key=value`` → (key, value); ``ValueError`` for anything else."""
    key, sep, value = arg.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"arguments must look like key=value; got {arg!r}")
    return key.strip(), value


def _merge(schema: type, layers: list, what: str, hint: str = "") -> Any:
    """The dataclass ``schema`` with ``layers`` (OmegaConf nodes) merged over it in order, as
    a dataclass; an OmegaConf error becomes one ``ValueError`` line: ``bad {what}: …{hint}``."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), *layers))
    except OmegaConfBaseException as error:
        message = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
        raise ValueError(f"bad {what}: {message}{hint}") from error


def compose(args: list[str]) -> RunConfig:
    """Merge dataclass defaults, ``config=NAME|PATH``, ``GROUP=NAME`` files and ``key=value``.

    Files are merged first (in the order given), then the ``key=value`` overrides, so an
    explicit value always wins over a preset. Unknown or mistyped keys raise ``ValueError``
    naming the valid keys.
    """
    from omegaconf import OmegaConf

    aliases = leaf_aliases()
    layers, overrides = [], []
    for arg in args:
        key, value = _key_value(arg)
        if key == "config":
            path = Path(value)
            if not path.is_file():
                named = configs_dir() / f"{value}.yaml"
                if not named.is_file():
                    raise ValueError(
                        f"config {value!r} is neither a file nor one of {_available('.')}"
                    )
                layers.append(OmegaConf.create(named.read_text()))
            else:
                layers.append(OmegaConf.load(path))
        elif key in GROUPS:
            file = _group_file(key, value)
            if file is not None:
                data = OmegaConf.create(file.read_text())
                layers.append(data if key == "preset" else OmegaConf.create({key: data}))
            elif key in GROUP_PRIMARY:
                overrides.append(OmegaConf.from_dotlist([f"{key}.{GROUP_PRIMARY[key]}={value}"]))
            elif key == "method" and value in METHOD_KINDS:
                # method=channel: no configs/method/channel.yaml, so it names the kind.
                layers.append(OmegaConf.create({"method": {"kind": value}}))
            else:
                kinds = f"; or a method kind: {list(METHOD_KINDS)}" if key == "method" else ""
                raise ValueError(
                    f"{key}={value!r}: no such {key} config; available: {_available(key)}{kinds}"
                )
        else:
            dotted = aliases.get(key, key)
            if dotted not in valid_keys():
                raise ValueError(
                    f"unknown config key {key!r}; valid keys: {', '.join(valid_keys())}"
                )
            overrides.append(OmegaConf.from_dotlist([f"{dotted}={value}"]))
    hint = f"; valid keys: {', '.join(valid_keys())}"
    return _merge(RunConfig, [*layers, *overrides], "configuration", hint)


def benchmark_keys() -> list[str]:
    """Every key of :class:`BenchmarkConfig` (for error messages)."""
    return [f.name for f in fields(BenchmarkConfig)]


def compose_benchmark(args: list[str]) -> BenchmarkConfig:
    """``[TASK] [config=PATH] [key=value ...]`` → a validated :class:`BenchmarkConfig`.

    Merges the dataclass, ``configs/benchmark.yaml`` (its defaults as data), the ``config=``
    files (in the order given), then the TASK (``pointing`` | ``faithfulness``, the same as
    ``task=TASK``) and the ``key=value`` overrides in the order given, so an explicit value
    wins over a file. Unknown keys, malformed arguments and bad values raise ``ValueError``
    naming the key (and the valid keys or values). Method names are checked by the job.
    """
    import yaml
    from omegaconf import OmegaConf

    args = list(args)
    keys = benchmark_keys()
    dotlist = [f"task={args.pop(0)}"] if args and "=" not in args[0] else []
    try:
        layers = [OmegaConf.create((configs_dir() / BENCHMARK_FILE).read_text())]
        for key, value in map(_key_value, args):
            if key == "config":
                if not Path(value).is_file():
                    raise ValueError(f"config={value!r}: no such file (a benchmark YAML file)")
                layers.append(OmegaConf.load(value))
            elif key.split(".")[0] not in keys:
                raise ValueError(
                    f"unknown key {key!r}; valid keys: {', '.join(keys)} (and config=PATH)"
                )
            else:
                dotlist.append(f"{key}={value}")
    except yaml.YAMLError as error:
        message = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
        raise ValueError(f"bad benchmark configuration: {message}") from error
    layers.append(OmegaConf.from_dotlist(dotlist))
    cfg = _merge(BenchmarkConfig, layers, "benchmark configuration")
    validate_benchmark(cfg)
    return cfg
