"""Reading YAML files (configs, benchmark configs, sweep files) with errors that name the file,
line and column: a malformed file is a :class:`~lightning_extremal.errors.UsageError`."""

from __future__ import annotations

import io
from typing import Any

from ..errors import UsageError


def yaml_error_message(error: Exception, name: str) -> str:
    """One line for a YAML parse error: ``FILE, line L, column C: problem``."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"{name}, line {mark.line + 1}, column {mark.column + 1}" if mark else name
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    detail = f"{problem} ({context})" if context else problem
    return f"{where}: not valid YAML: {detail}"


def _top_level_check(data: Any, name: str, what: str) -> None:
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise UsageError(
            f"{name}: {what} must be a YAML mapping (key: value lines); its top level is {kind}"
        )


def read_yaml_mapping(text: str, name: str, what: str = "the file") -> dict[str, Any]:
    """``text`` (the content of the file ``name``) as a plain dict (PyYAML's safe loader)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise UsageError(yaml_error_message(error, name)) from error
    _top_level_check(data, name, what)
    return data


def load_config_text(text: str, name: str, what: str = "a config file") -> Any:
    """``text`` (the content of the file ``name``) as an OmegaConf mapping (OmegaConf's YAML
    loader: ``1e-3`` is a float); an empty file is an empty mapping."""
    import yaml
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        data = OmegaConf.load(io.StringIO(text))
    except yaml.YAMLError as error:
        raise UsageError(yaml_error_message(error, name)) from error
    except OmegaConfBaseException as error:
        raise UsageError(f"{name}: {str(error).splitlines()[0]}") from error
    if not isinstance(data, DictConfig):
        _top_level_check(OmegaConf.to_container(data), name, what)
    return data
