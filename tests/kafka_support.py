"""Plain helpers for tests that talk to the real broker (importable: `from kafka_support import ...`)."""

from __future__ import annotations

import itertools
import uuid

# Consumer-group settings that keep joins fast against tansu (defaults make a join wait minutes).
FAST_GROUP = {"session.timeout.ms": 6000, "max.poll.interval.ms": 10000, "heartbeat.interval.ms": 500}

_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:6]}"
