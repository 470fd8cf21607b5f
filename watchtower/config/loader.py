"""Load one YAML file, overlay environment variables, validate, and explain failures by field and line.

Environment overrides: `WATCHTOWER__PIPELINE__TOPIC=orders` sets `pipeline.topic` (double underscore
separates levels). `REDIS_URL` and `KAFKA_BOOTSTRAP_SERVERS` are honoured as the usual shorthands.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from watchtower.config.yaml_source import ConfigError, compose_with_lines, line_of

ENV_PREFIX = "WATCHTOWER__"

__all__ = ["ConfigError", "load_model"]

M = TypeVar("M", bound=BaseModel)


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__") if p]
        cursor = out
        for p in parts[:-1]:
            cursor = cursor.setdefault(p, {})
        if parts:
            cursor[parts[-1]] = value
    if env.get("REDIS_URL"):
        out.setdefault("redis", {}).setdefault("url", env["REDIS_URL"])
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        out.setdefault("kafka", {}).setdefault("bootstrap_servers", env["KAFKA_BOOTSTRAP_SERVERS"])
    return out


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _describe(err: Mapping[str, Any], source: str, lines: Mapping[tuple[str, ...], int], from_env: set[tuple[str, ...]]) -> str:
    loc = tuple(str(p) for p in err["loc"])
    dotted = ".".join(loc) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown setting; check the spelling or remove it"
    elif err["type"] == "missing":
        msg = "required; add it"
    if loc in from_env:
        where = f"environment {ENV_PREFIX}{'__'.join(p.upper() for p in loc)}"
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
            raise ConfigError([f"{source}:1: the file must be a mapping of sections (kafka:, redis:, pipeline: ...)"])
        data = loaded
    overrides = _env_overrides(env)
    from_env: set[tuple[str, ...]] = set()

    def collect(d: Mapping[str, Any], prefix: tuple[str, ...]) -> None:
        for k, v in d.items():
            if isinstance(v, Mapping):
                collect(v, (*prefix, k))
            else:
                from_env.add((*prefix, k))

    collect(overrides, ())
    try:
        return model.model_validate(_merge(data, overrides))
    except ValidationError as exc:
        raise ConfigError([_describe(e, source, lines, from_env) for e in exc.errors()]) from None
