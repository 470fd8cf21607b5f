"""Load one YAML file, overlay environment variables, validate, and explain failures by field and line.

Environment overrides: `WATCHTOWER__PIPELINE__TOPIC=orders` sets `pipeline.topic` (double underscore
separates levels); list and mapping values are given as JSON. See watchtower.config.env.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from watchtower.config.env import ENV_PREFIX, EnvOverrides, env_overrides
from watchtower.config.yaml_source import ConfigError, compose_with_lines, line_of

__all__ = ["ENV_PREFIX", "ConfigError", "load_model"]

M = TypeVar("M", bound=BaseModel)


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _describe(
    err: Mapping[str, Any], source: str, lines: Mapping[tuple[str, ...], int], env: EnvOverrides
) -> str:
    loc = tuple(str(p) for p in err["loc"])
    dotted = ".".join(loc) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown setting; check the spelling or remove it"
    elif err["type"] == "missing":
        msg = "required; add it"
    variable = env.variable(loc)
    if variable is not None:
        where = f"environment {variable}"
        msg += env.explain(variable, err["type"])
    else:
        line = line_of(loc, lines)
        where = f"{source}:{line}" if line else source
    return f"{where}: {dotted}: {msg}"


def load_model(model: type[M], path: str | Path | None = None, env: Mapping[str, str] | None = None) -> M:
    """Read `path` (optional), overlay the environment, validate as `model`. Raises ConfigError, never a
    traceback. The root config's `load_config` (watchtower/settings.py) is this with `WatchtowerConfig`."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    lines: dict[tuple[str, ...], int] = {}
    source = "<defaults>"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise ConfigError([f"{source}: no such config file; pass an existing file with --config"])
        loaded, lines = compose_with_lines(p.read_text(), source)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                [f"{source}:1: the file must be a mapping of sections (kafka:, redis:, pipeline: ...)"]
            )
        data = loaded
    overrides = env_overrides(env)
    try:
        return model.model_validate(_merge(data, overrides.values))
    except ValidationError as exc:
        raise ConfigError([_describe(e, source, lines, overrides) for e in exc.errors()]) from None
