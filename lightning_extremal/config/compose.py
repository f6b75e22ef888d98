"""Composing a :class:`~.schema.RunConfig` (and the benchmark's
:class:`~.schema.BenchmarkConfig`) from the YAML files of ``configs/`` and ``key=value``
overrides (OmegaConf)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .schema import METHOD_KINDS, AnalysisConfig, BenchmarkConfig, RunConfig
from .validation import validate_analysis, validate_benchmark, validate_data
from .yaml_files import load_config_text

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


def available_names(group: str) -> list[str]:
    """The names of the YAML files in ``configs/GROUP/`` (``"."``: the top-level ones)."""
    folder = configs_dir() / group
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def did_you_mean(
    word: str, candidates: Iterable[str], aliases: dict[str, str] | None = None
) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``candidates`` to ``word`` (an alias
    shown as what it stands for), or ``""`` when none is close."""
    aliases = aliases or {}
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {aliases.get(close[0], close[0])!r}?" if close else ""


def _key_value(arg: str) -> tuple[str, str]:
    """``key=value`` → (key, value); ``ValueError`` for anything else."""
    key, sep, value = arg.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"arguments must look like key=value; got {arg!r}")
    return key.strip(), value


def _dotlist(items: list[str]) -> Any:
    """``key=value`` items as an OmegaConf layer; a value that is not valid YAML (``[0.1,``)
    is a ``UsageError`` naming the item."""
    import yaml
    from omegaconf import OmegaConf

    try:
        return OmegaConf.from_dotlist(items)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UsageError(f"bad value in {' '.join(items)!r}: not valid YAML ({problem})") from error


def _omegaconf_message(error: Exception, keys: list[str], aliases: dict[str, str]) -> str:
    """An OmegaConf error in one line: the key it names, its first line, and the closest of
    ``keys`` when the key is not one of them."""
    first = str(error).strip().splitlines()[0].strip()
    key = getattr(error, "full_key", None)
    if not key:
        return first
    hint = "" if key in keys else did_you_mean(key, [*keys, *aliases], aliases)
    return f"{key}: {first}{hint}"


def _merge(
    schema: type, layers: list, what: str, keys: list[str], aliases: dict[str, str] | None = None
) -> Any:
    """The dataclass ``schema`` with ``layers`` (OmegaConf nodes) merged over it in order, as
    a dataclass; an OmegaConf error becomes one ``UsageError`` line: ``bad {what}: …``
    (``keys``: the valid keys, for the closest match to an unknown one)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), *layers))
    except OmegaConfBaseException as error:
        message = _omegaconf_message(error, keys, aliases or {})
        raise UsageError(f"bad {what}: {message}") from error


def _config_file(value: str) -> Any:
    """``config=NAME|PATH``: a YAML file, or ``configs/NAME.yaml``."""
    path = Path(value)
    if path.is_file():
        return load_config_text(path.read_text(), str(path))
    named = configs_dir() / f"{value}.yaml"
    if not named.is_file():
        names = available_names(".")
        raise UsageError(
            f"config={value!r} is neither a file nor a name in configs/"
            f"{did_you_mean(value, names)} (names: {', '.join(names)})"
        )
    return load_config_text(named.read_text(), f"configs/{value}.yaml")


def _group_layer(group: str, value: str) -> tuple[Any, bool]:
    """``GROUP=NAME``: (an OmegaConf layer, whether it is an override rather than a file)."""
    from omegaconf import OmegaConf

    file = configs_dir() / group / f"{value}.yaml"
    if file.is_file():
        data = load_config_text(file.read_text(), f"configs/{group}/{value}.yaml")
        return (data if group == "preset" else OmegaConf.create({group: data})), False
    if group in GROUP_PRIMARY:
        return _dotlist([f"{group}.{GROUP_PRIMARY[group]}={value}"]), True
    if group == "method" and value in METHOD_KINDS:
        # method=channel: no configs/method/channel.yaml, so it names the kind.
        return OmegaConf.create({"method": {"kind": value}}), False
    names = available_names(group)
    kinds = list(METHOD_KINDS) if group == "method" else []
    also = f"; or a method kind: {', '.join(kinds)}" if kinds else ""
    raise UsageError(
        f"{group}={value!r}: no such {group} config{did_you_mean(value, [*names, *kinds])} "
        f"(available: {', '.join(names)}{also})"
    )


def _override(key: str, value: str, aliases: dict[str, str]) -> Any:
    """``key=value`` for a config field (dotted, or a field name unique to one group)."""
    dotted = aliases.get(key, key)
    if dotted not in valid_keys():
        candidates = [*valid_keys(), *aliases, *GROUPS, "config"]
        hint = did_you_mean(key, candidates, aliases)
        raise UsageError(
            f"unknown key {key!r}{hint or '; `lightning-extremal run --help` lists the keys'}"
        )
    return _dotlist([f"{dotted}={value}"])


def compose(args: list[str]) -> RunConfig:
    """Merge dataclass defaults, ``config=NAME|PATH``, ``GROUP=NAME`` files and ``key=value``.

    Files are merged first (in the order given), then the ``key=value`` overrides, so an
    explicit value always wins over a preset. Unknown or mistyped keys, unknown names and
    malformed YAML files raise :class:`~lightning_extremal.errors.UsageError` (a
    ``ValueError``) naming the bad value and the closest valid one.
    """
    aliases = leaf_aliases()
    layers, overrides = [], []
    for arg in args:
        key, value = _key_value(arg)
        if key == "config":
            layers.append(_config_file(value))
        elif key in GROUPS:
            layer, is_override = _group_layer(key, value)
            (overrides if is_override else layers).append(layer)
        else:
            overrides.append(_override(key, value, aliases))
    cfg = _merge(RunConfig, [*layers, *overrides], "configuration", valid_keys(), aliases)
    validate_data(cfg.data)
    return cfg


def config_yaml(cfg: Any) -> str:
    """A composed configuration (a dataclass) as YAML: the values ``config.json`` records."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(asdict(cfg)))


def benchmark_keys() -> list[str]:
    """Every key of :class:`BenchmarkConfig` (for error messages)."""
    return [f.name for f in fields(BenchmarkConfig)]


def _benchmark_layer(key: str, value: str, keys: list[str]) -> Any:
    """``config=PATH`` of the benchmark: its YAML file; an unknown key: a ``UsageError``."""
    if key == "config":
        if not Path(value).is_file():
            raise UsageError(f"config={value!r}: no such file (a benchmark YAML file)")
        return load_config_text(Path(value).read_text(), value, "a benchmark config file")
    hint = did_you_mean(key, keys) or f"; valid keys: {', '.join(keys)} (and config=PATH)"
    raise UsageError(f"unknown key {key!r}{hint}")


def compose_benchmark(args: list[str]) -> BenchmarkConfig:
    """``[TASK] [config=PATH] [key=value ...]`` → a validated :class:`BenchmarkConfig`.

    Merges the dataclass, ``configs/benchmark/default.yaml`` (its defaults as data), the
    ``config=`` files (in the order given), then the TASK (``pointing`` | ``faithfulness``, the
    same as ``task=TASK``) and the ``key=value`` overrides in the order given, so an explicit
    value wins over a file. Unknown keys, malformed arguments or files and bad values raise
    :class:`~lightning_extremal.errors.UsageError` naming the key (and the closest valid key
    or the valid values). Method names are checked by the job.
    """

    args = list(args)
    keys = benchmark_keys()
    dotlist = [f"task={args.pop(0)}"] if args and "=" not in args[0] else []
    layers = [load_config_text((configs_dir() / BENCHMARK_FILE).read_text(), BENCHMARK_FILE)]
    for key, value in map(_key_value, args):
        if key != "config" and key.split(".")[0] in keys:
            dotlist.append(f"{key}={value}")
        else:
            layers.append(_benchmark_layer(key, value, keys))
    layers.append(_dotlist(dotlist))
    cfg = _merge(BenchmarkConfig, layers, "benchmark configuration", keys)
    validate_benchmark(cfg)
    return cfg


#: Keys of :class:`~.schema.AnalysisConfig` are written ``analysis.KEY=value``.
ANALYSIS_PREFIX = "analysis."
#: Run keys that mean the analysis' area grid on ``analyze`` (the run's own areas are unused).
ANALYSIS_AREA_KEYS = ("areas", "method.areas")


def analysis_keys() -> list[str]:
    """Every key of :class:`AnalysisConfig`, as written (``analysis.areas``, …)."""
    return [f"{ANALYSIS_PREFIX}{f.name}" for f in fields(AnalysisConfig)]


def compose_analysis(args: list[str]) -> tuple[RunConfig, AnalysisConfig]:
    """``[key=value ...]`` of ``lightning-extremal analyze NAME`` → the run's configuration
    (:func:`compose`: model, data, method, trainer, logger, output_dir) and the analysis'.

    ``analysis.KEY=value`` sets :class:`AnalysisConfig`; ``areas=`` (and ``method.areas=``)
    set its area grid; every other argument is a run argument. Bad keys and values raise
    :class:`~lightning_extremal.errors.UsageError` naming them.
    """
    run_args, items = [], []
    for arg in args:
        key, value = _key_value(arg)
        if key.startswith(ANALYSIS_PREFIX):
            items.append(f"{key[len(ANALYSIS_PREFIX) :]}={value}")
        elif key in ANALYSIS_AREA_KEYS:
            items.append(f"areas={value}")
        else:
            run_args.append(arg)
    cfg = compose(run_args)
    keys = [f.name for f in fields(AnalysisConfig)]
    for item in items:
        name = item.partition("=")[0]
        if name.split(".")[0] not in keys:
            shown = {k: f"{ANALYSIS_PREFIX}{k}" for k in keys}
            hint = did_you_mean(name, keys, shown) or f" (keys: {', '.join(shown.values())})"
            raise UsageError(f"unknown key {ANALYSIS_PREFIX}{name!s}{hint}")
    analysis = _merge(AnalysisConfig, [_dotlist(items)], "analysis configuration", keys)
    try:
        validate_analysis(analysis)
    except ValueError as error:
        raise UsageError(str(error)) from error
    return cfg, analysis
