"""Settings from environment variables: `WATCHTOWER__SECTION__KEY=value`, double underscore between levels.

A value that looks like JSON (starts with `[` or `{`) is read as JSON, so list and mapping settings can be
set too, including mappings whose keys have dots, which a variable name cannot hold:

    WATCHTOWER__ALERTING__RULES='["alerts/", "/etc/watchtower/extra.yaml"]'
    WATCHTOWER__KAFKA__SECRETS='{"ssl.key.password": "..."}'

Anything else stays a string (pydantic converts numbers, booleans and durations from it). A JSON-looking
value that does not parse stays a string as well; a string field takes it as is, and any other field
fails with the JSON error and how to quote the value (see `EnvOverrides.explain`). `REDIS_URL` and
`KAFKA_BOOTSTRAP_SERVERS` are honoured as the usual shorthands.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ENV_PREFIX = "WATCHTOWER__"

Path = tuple[str, ...]


@dataclass
class EnvOverrides:
    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[Path, str] = field(default_factory=dict)  # settings path -> the variable that set it
    bad_json: dict[str, str] = field(
        default_factory=dict
    )  # variable -> why its JSON-looking value did not parse
    from_json: set[str] = field(default_factory=set)  # variables whose value was read as JSON

    def variable(self, loc: Path) -> str | None:
        """The variable that set `loc` or the list/mapping it sits in; None when the value is not from the environment."""
        for n in range(len(loc), 0, -1):
            if loc[:n] in self.origins:
                return self.origins[loc[:n]]
        return None

    def explain(self, variable: str, error_type: str = "") -> str:
        """What to add to a validation error about `variable`: the JSON problem and the fix, if it had one."""
        why = self.bad_json.get(variable)
        if why is None:
            if variable in self.from_json and error_type == "string_type":
                return f" ({variable} starts with [ or {{ and was read as JSON: quote it as a JSON string, e.g. '\"[...]\"')"
            return ""
        return (
            f" (the value starts like JSON but is not valid JSON: {why}; write a JSON list or mapping with "
            f'double-quoted strings and single quotes around it in the shell, e.g. {variable}=\'["a", "b"]\')'
        )


def parse_value(value: str) -> tuple[Any, str | None]:
    """A variable's value: JSON if it looks like a list or mapping, else the string. Returns (value, JSON error)."""
    text = value.strip()
    if not text or text[0] not in "[{":
        return value, None
    try:
        return json.loads(text), None
    except ValueError as exc:  # json's messages carry positions, never the value (it may be a secret)
        return value, str(exc).split(":", 1)[0]


def env_overrides(env: Mapping[str, str]) -> EnvOverrides:
    out = EnvOverrides()
    for name in sorted(
        env
    ):  # sorted: WATCHTOWER__A__B applies after WATCHTOWER__A, whatever the order of env
        if not name.startswith(ENV_PREFIX):
            continue
        parts = tuple(p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p)
        if not parts:
            continue
        value, error = parse_value(env[name])
        if error is not None:
            out.bad_json[name] = error
        elif value is not env[name]:
            out.from_json.add(name)
        _set(out.values, parts, value)
        _record(out.origins, parts, value, name)
    if env.get("REDIS_URL"):
        out.values.setdefault("redis", {}).setdefault("url", env["REDIS_URL"])
        out.origins.setdefault(("redis", "url"), "REDIS_URL")
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        out.values.setdefault("kafka", {}).setdefault("bootstrap_servers", env["KAFKA_BOOTSTRAP_SERVERS"])
        out.origins.setdefault(("kafka", "bootstrap_servers"), "KAFKA_BOOTSTRAP_SERVERS")
    return out


def _set(root: dict[str, Any], parts: Path, value: Any) -> None:
    cursor = root
    for p in parts[:-1]:
        nxt = cursor.get(p)
        if not isinstance(nxt, dict):
            nxt = cursor[p] = {}
        cursor = nxt
    old = cursor.get(parts[-1])
    if isinstance(old, dict) and isinstance(value, dict):
        cursor[parts[-1]] = {**value, **old}  # a deeper variable (set earlier: sorted) wins over the mapping
    else:
        cursor[parts[-1]] = value


def _record(origins: dict[Path, str], parts: Path, value: Any, name: str) -> None:
    origins[parts] = name
    if isinstance(value, dict):
        for k, v in value.items():
            if (*parts, str(k)) not in origins:
                _record(origins, (*parts, str(k)), v, name)
