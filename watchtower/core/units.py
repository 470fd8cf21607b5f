"""Durations and sizes as config values: `500ms`, `30s`, `10m`, `2h`, `1d`; `65536`, `64KiB`, `1MiB`.

Durations are stored as float seconds, sizes as int bytes.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kib|kb|mib|mb)?\s*$", re.I)
_SIZE_UNIT = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, None: 1}


def parse_duration(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 10m or 1h")
    if isinstance(value, int | float):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a duration: write it as 500ms, 30s, 10m, 2h or 1d")
    return float(m.group(1)) * _UNIT[m.group(2)]


def parse_size(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a size: write it as 65536, 64KiB or 1MiB")
    return int(m.group(1)) * _SIZE_UNIT[(m.group(2) or "").lower() or None]


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
