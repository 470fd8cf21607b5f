"""Actuator kinds: one line per kind in `KINDS`, naming the module that implements it.

Each module exports a pydantic `Config` whose `kind: Literal["<kind>"]` tells the kinds apart in the
config file, and `build(target_name, config) -> Actuator`, which makes no connection. `ActuatorConfig`
is the union of every kind's `Config`, so an unknown kind fails at start with the kinds that exist.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Annotated, Any, Union

from pydantic import Field, SecretStr

from watchtower.scale.base import Actuator

KINDS: dict[str, str] = {
    "dry_run": "watchtower.scale.dry_run",
    "local_pool": "watchtower.scale.local_pool",
    "kubernetes": "watchtower.scale.actuators.kubernetes",
    "flink": "watchtower.scale.actuators.flink",
}
DEFAULT_KIND = "dry_run"


def module(kind: str) -> ModuleType:
    if kind not in KINDS:
        raise ValueError(f"unknown actuator kind {kind!r}: use one of {', '.join(sorted(KINDS))}")
    return importlib.import_module(KINDS[kind])


_CONFIGS = tuple(module(k).Config for k in KINDS)
ActuatorConfig = Annotated[Union[_CONFIGS], Field(discriminator="kind")]  # type: ignore[valid-type]  # noqa: UP007


def default_config() -> Any:
    return module(DEFAULT_KIND).Config()


def build(target_name: str, config: Any, redis_url: str | None = None) -> Actuator:
    """Build the target's actuator; a kind that talks to Redis and names none gets the daemon's `redis_url`."""
    if getattr(config, "redis_url", "") is None and redis_url:
        config = config.model_copy(update={"redis_url": SecretStr(redis_url)})
    return module(config.kind).build(target_name, config)
