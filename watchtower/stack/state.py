"""What the stack runs and where: the record `stack up` writes to `<state_dir>/stack.json`.

The file never holds a secret. An embedded Redis has no password; an external Redis is recorded by its
masked URL only (the real one stays in the config), and Kafka bootstrap servers carry no credentials.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

EMBEDDED = "embedded"
EXTERNAL = "external"
STATE_FILE = "stack.json"


def mask_url(url: str) -> str:
    """`redis://user:pw@host:6379/0` -> `redis://user:***@host:6379/0`; URLs without a password unchanged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass
class BrokerPart:
    mode: str  # embedded | external
    bootstrap_servers: str
    pid: int | None = None
    port: int | None = None
    log: str | None = None


@dataclass
class RedisPart:
    mode: str  # embedded | external
    url: str  # embedded: the real URL (no password); external: masked, for display only
    requested: str = (
        ""  # masked redis.url that `up` was given ("" if none): tells whether the config changed since
    )
    pid: int | None = None
    port: int | None = None
    server: str | None = None  # the binary that runs it (redis-server, or the bundled valkey-server)
    log: str | None = None


@dataclass
class StackInfo:
    broker: BrokerPart
    redis: RedisPart
    topics: dict[str, int] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    already_running: bool = False  # set by `up` when it found everything running; not persisted

    def to_json(self) -> str:
        doc = asdict(self)
        doc.pop("already_running")
        return json.dumps(doc, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> StackInfo:
        return cls(
            broker=BrokerPart(**doc["broker"]),
            redis=RedisPart(**doc["redis"]),
            topics=dict(doc.get("topics", {})),
            started_at=float(doc.get("started_at", 0.0)),
        )


def state_path(state_dir: Path) -> Path:
    return Path(state_dir) / STATE_FILE


def load_state(state_dir: Path) -> StackInfo | None:
    """The recorded stack, or None if there is none (or the file is unreadable: treated as no stack)."""
    path = state_path(state_dir)
    try:
        return StackInfo.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return None


def save_state(state_dir: Path, info: StackInfo) -> Path:
    path = state_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(info.to_json() + "\n")
    os.replace(tmp, path)  # readers never see half a file
    return path


def clear_state(state_dir: Path) -> None:
    state_path(state_dir).unlink(missing_ok=True)
