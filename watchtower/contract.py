"""What the reference pipeline and the daemon share: the event wire format, Redis names, the canary.

Imported by both `pipelines/` (which writes these keys and streams) and `watchtower/` (which reads them),
so neither imports the other. Plain values and pure functions only; no I/O.

A record's key is the user id (UTF-8) and its value one JSON object:

    {"event_id": "9f1c...", "order_id": "o-42", "user_id": "u-7", "amount": 12.5,
     "event_type": "paid", "event_time": "2026-11-23T15:44:31.123Z"}

The rule book for a record (`validate`) lives in pipelines/events.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

# Redis: one stream entry per micro-batch (source, batch_id, count, latency summary) -> e2e_latency.
E2E_STREAM = "watchtower:e2e"
# Redis: one entry per Spark StreamingQueryProgress -> spark_progress (pipeline.progress_stream default).
PROGRESS_STREAM = "watchtower:spark:progress"
# Redis: `<prefix><event_id>` = visible_at (epoch ms), written when a canary's batch reached Redis.
CANARY_PREFIX = "wt:canary:"
# Redis: a hash of the faults chaos runs injected, field `<run>:<step>:<started_ms>:<random>` -> JSON {run, scenario,
# fault, started_at, ended_at (null while it runs)}; written by `watchtower chaos run`, read by the `chaos`
# collector (watchtower/collectors/chaos_faults.py). Entries ended (or started, if never ended) longer than
# CHAOS_FAULTS_RETENTION seconds ago are pruned on every write, and the key expires after as long unwritten.
CHAOS_FAULTS = "wt:chaos:faults"
CHAOS_FAULTS_RETENTION = 3600.0
CHAOS_FAULTS_MAX = 1000  # entries kept at most (the newest), whatever their age

CANARY_TYPE = "canary"
MARKER_TYPE = "marker"
# Control events are valid records that never enter business tables or aggregates.
CONTROL_TYPES: frozenset[str] = frozenset({CANARY_TYPE, MARKER_TYPE})
CANARY_USER = "watchtower-canary"


def format_event_time(ms: int) -> str:
    """`2026-11-23T15:44:31.123Z` for epoch milliseconds."""
    dt = datetime.fromtimestamp(ms // 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def encode(event: dict[str, Any]) -> bytes:
    """The record value for an event (compact JSON, keys in the order given)."""
    return orjson.dumps(event)


def key_of(event: dict[str, Any]) -> bytes:
    return str(event["user_id"]).encode()


def new_event(
    user_id: str,
    amount: float,
    event_type: str,
    event_time_ms: int,
    order_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A contract-conforming event; ids default to fresh uuid4 hex."""
    return {
        "event_id": event_id or uuid.uuid4().hex,
        "order_id": order_id or f"o-{uuid.uuid4().hex[:12]}",
        "user_id": user_id,
        "amount": float(amount),
        "event_type": event_type,
        "event_time": format_event_time(event_time_ms),
    }


def canary_event(now_ms: int, event_id: str | None = None) -> dict[str, Any]:
    """The daemon's end-to-end probe: a valid control event with event_time = now."""
    return new_event(
        CANARY_USER,
        0.0,
        CANARY_TYPE,
        now_ms,
        order_id="canary",
        event_id=event_id or f"canary-{uuid.uuid4().hex}",
    )
