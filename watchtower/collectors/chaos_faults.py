"""Faults of chaos runs as series, so every dashboard marks them (collector kind `chaos`).

`watchtower chaos run` records each fault it injects in one Redis hash (`contract.CHAOS_FAULTS`) through
`record_start` before the fault starts and `record_end` once it is undone; this collector reads the hash
every cycle and exports

    watchtower_chaos_fault_active{scenario, fault}   1 while a fault of that scenario and kind runs,
                                                     0 once every one of them ended; gone after `retention`

A fault whose end was never recorded (the runner was killed) counts as running until `retention` after its
start. The writer prunes entries past the retention and keeps at most CHAOS_FAULTS_MAX, and the key
expires when nothing was written for as long: the hash cannot grow without bound.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import Field

from watchtower.collectors.base import BuildContext, CollectorKind, CollectorSection
from watchtower.collectors.redis_stream import LazyRedis, redis_errors
from watchtower.contract import CHAOS_FAULTS, CHAOS_FAULTS_MAX, CHAOS_FAULTS_RETENTION
from watchtower.core.types import Kind, MetricSpec, Reading, Sample, labels
from watchtower.core.units import Duration

METRIC = "watchtower_chaos_fault_active"
SPECS = (
    MetricSpec(
        METRIC,
        Kind.GAUGE,
        "1 while a chaos run's fault of this kind runs in this scenario, 0 once it ended (dropped after "
        "daemon.collectors.chaos.retention); dashboards draw it as an annotation",
        ("scenario", "fault"),
    ),
)


class ChaosFaultsConfig(CollectorSection):
    """The `daemon.collectors.chaos:` section: where chaos runs record their faults.

    On by default: one HGETALL per cycle, and no series until a chaos run writes the hash."""

    interval: Duration = Field(default=5.0, gt=0)
    key: str = Field(default=CHAOS_FAULTS, min_length=1)
    retention: Duration = Field(default=CHAOS_FAULTS_RETENTION, gt=0)


@dataclass(frozen=True)
class FaultRecord:
    run: str
    scenario: str
    fault: str
    started_at: float
    ended_at: float | None = None

    def last_seen(self) -> float:
        return self.ended_at if self.ended_at is not None else self.started_at


# ---- pure ---------------------------------------------------------------------------------------------


def field_of(run: str, step: int | str, started_at: float) -> str:
    return f"{run}:{step}:{int(started_at * 1000)}:{uuid.uuid4().hex[:6]}"


def encode(record: FaultRecord) -> str:
    return json.dumps(record.__dict__, sort_keys=True)


def decode(raw: str | bytes) -> FaultRecord | None:
    """One hash value, or None for one this version cannot read (skipped, not fatal)."""
    try:
        d = json.loads(raw)
        ended = d.get("ended_at")
        return FaultRecord(
            str(d["run"]),
            str(d["scenario"]),
            str(d["fault"]),
            float(d["started_at"]),
            None if ended is None else float(ended),
        )
    except (ValueError, KeyError, TypeError):
        return None


def expired(records: Mapping[str, FaultRecord], now: float, retention: float, keep: int) -> list[str]:
    """Fields to delete: past the retention, and beyond the `keep` newest."""
    old = [f for f, r in records.items() if r.last_seen() < now - retention]
    rest = sorted((r.started_at, f) for f, r in records.items() if f not in set(old))
    return old + [f for _, f in rest[: max(0, len(rest) - keep)]]


def fault_samples(records: Iterable[FaultRecord], now: float, retention: float) -> tuple[Sample, ...]:
    """One sample per (scenario, fault) seen within the retention: 1 if any of them runs, else 0."""
    active: dict[tuple[str, str], bool] = {}
    for r in records:
        if r.last_seen() < now - retention:
            continue
        key = (r.scenario, r.fault)
        active[key] = active.get(key, False) or r.ended_at is None
    return tuple(
        Sample(METRIC, labels(scenario=s, fault=f), float(a)) for (s, f), a in sorted(active.items())
    )


# ---- I/O: the writer (chaos runs) ---------------------------------------------------------------------


def _read(client: redis.Redis, key: str) -> dict[str, FaultRecord]:
    out = {}
    for f, raw in client.hgetall(key).items():
        rec = decode(raw)
        if rec is not None:
            out[f.decode() if isinstance(f, bytes) else f] = rec
    return out


def _write(client: redis.Redis, key: str, field: str, record: FaultRecord, now: float) -> None:
    drop = expired({**_read(client, key), field: record}, now, CHAOS_FAULTS_RETENTION, CHAOS_FAULTS_MAX)
    pipe = client.pipeline()
    pipe.hset(key, field, encode(record))
    if drop:
        pipe.hdel(key, *drop)
    pipe.expire(key, int(CHAOS_FAULTS_RETENTION))
    pipe.execute()


def record_start(
    client: redis.Redis,
    run: str,
    scenario: str,
    fault: str,
    step: int | str,
    at: float,
    key: str = CHAOS_FAULTS,
) -> str:
    """Record a fault as running from `at`; returns its field for `record_end`. Raises redis errors."""
    field = field_of(run, step, at)
    _write(client, key, field, FaultRecord(run, scenario, fault, at), at)
    return field


def record_end(client: redis.Redis, field: str, at: float, key: str = CHAOS_FAULTS) -> None:
    """Mark the fault recorded under `field` as ended at `at` (a field pruned meanwhile is left alone)."""
    raw = client.hget(key, field)
    rec = decode(raw) if raw is not None else None
    if rec is None:
        return
    _write(
        client,
        key,
        field,
        FaultRecord(rec.run, rec.scenario, rec.fault, rec.started_at, at),
        at,
    )


# ---- I/O: the collector -------------------------------------------------------------------------------


class ChaosFaultsCollector:
    """Collector `chaos`: reads the hash each cycle; Redis errors mark it down (RedisUnavailable)."""

    specs = SPECS

    def __init__(self, config: ChaosFaultsConfig, redis_url: str, name: str = "chaos"):
        self.name, self.interval, self.config = name, config.interval, config
        self._redis = LazyRedis(redis_url, config.timeout)

    def collect(self, now: float) -> Reading:
        with redis_errors("reading the chaos faults"):
            records = _read(self._redis.get(), self.config.key)
        samples = fault_samples(records.values(), now, self.config.retention)
        detail: dict[str, Any] = {"faults": len(records)}
        return Reading(collector=self.name, at=now, samples=samples, detail=detail)

    def close(self) -> None:
        self._redis.close()


def build(config: ChaosFaultsConfig | None, ctx: BuildContext) -> ChaosFaultsCollector | None:
    if config is None or not config.enabled or not ctx.redis_url:
        return None
    return ChaosFaultsCollector(config, ctx.redis_url)


KIND = CollectorKind("chaos", ChaosFaultsConfig, build, SPECS)
