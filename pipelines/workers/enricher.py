"""The enricher: a consumer-group worker that keeps per-user order state in Redis, exactly once.

Per user (hash `<prefix>:user:<user_id>`): `events` (valid events applied), `amount_cents` (sum of
amounts in cents, integer so sums stay exact), `last_event_ms` / `last_event_time` (the latest event
time seen, so a late event never moves it back) and `type:<event_type>` counts (`type:created` is the
number of orders placed).

Why it never double-counts: each consumed batch is applied in one Redis MULTI/EXEC that also stores,
per partition, the offset of the last record applied (`<prefix>:applied:<topic>:<partition>`, WATCHed
so a previous owner still finishing a batch makes us re-read). Records at or below that offset are
skipped, so a redelivery after a crash (Kafka commit lost, Redis write done) changes nothing. Only then
are offsets committed to Kafka. The generator's duplicates (same bytes, new offset) are dropped by event
id (`<prefix>:seen:<event_id>`, kept `dedup_ttl`); a user's events all live in one partition, so
the partition owner is the only writer of that user's keys.

Invalid records are counted (`<prefix>:stats`, `invalid:<reason>`) and skipped: the Spark job owns the
DLQ. Control events (canary, marker) are skipped.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import redis
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from pipelines import failpoints
from pipelines.events import CONTROL_TYPES, DEFAULT_MAX_EVENT_BYTES, Verdict, format_event_time, validate
from watchtower.config.models import KafkaConfig, WorkersConfig
from watchtower.kafka import consumer as make_consumer

log = logging.getLogger(__name__)

BATCH_SIZE = 500
POLL_TIMEOUT = 0.5
DEDUP_TTL = 3600.0
REDIS_RETRY = 1.0


def key_prefix(group: str) -> str:
    return f"wt:enricher:{group}"


def group_settings(workers: WorkersConfig) -> dict[str, Any]:
    """Consumer-group timing from WorkersConfig. Heartbeats at a tenth of the session timeout, so a
    rebalance is noticed within a fraction of a second on a low-timeout (test) group."""
    session_ms = int(workers.session_timeout * 1000)
    return {
        "session.timeout.ms": session_ms,
        "max.poll.interval.ms": max(int(workers.max_poll_interval * 1000), session_ms),
        "heartbeat.interval.ms": min(3000, max(100, session_ms // 10)),
    }


# -- pure: what a batch changes --------------------------------------------------------------------


@dataclass
class UserDelta:
    events: int = 0
    amount_cents: int = 0
    last_event_ms: int = -1
    types: Counter[str] = field(default_factory=Counter)


@dataclass
class BatchPlan:
    """What one batch does to Redis, computed from the records and what Redis already holds."""

    users: dict[str, UserDelta] = field(default_factory=dict)
    applied: dict[int, int] = field(default_factory=dict)  # partition -> highest offset in the batch
    new_ids: list[str] = field(default_factory=list)
    stats: Counter[str] = field(
        default_factory=Counter
    )  # applied, invalid:<reason>, control, duplicate, replayed

    @property
    def applied_events(self) -> int:
        return self.stats["applied"]


Decoded = tuple[int, int, Verdict]  # (partition, offset, validation verdict)


def decode(
    records: Iterable[tuple[int, int, bytes | None]], max_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> list[Decoded]:
    return [(p, o, validate(value, max_bytes)) for p, o, value in records]


def candidate_ids(decoded: Iterable[Decoded], applied: Mapping[int, int]) -> list[str]:
    """The event ids of the valid records past the applied offsets: the ones to look up in Redis."""
    return [v.event["event_id"] for p, o, v in decoded if v.ok and o > applied.get(p, -1)]


def plan_batch(decoded: Iterable[Decoded], applied: Mapping[int, int], seen: Iterable[str] = ()) -> BatchPlan:
    """Fold decoded records into a plan. Pure.

    `applied` holds the last applied offset per partition (missing: none yet); `seen` the event ids
    Redis already has. Records at or below the applied offset are `replayed` and change nothing.
    """
    plan = BatchPlan()
    seen_ids = set(seen)
    for partition, offset, verdict in decoded:
        if offset > plan.applied.get(partition, -1):
            plan.applied[partition] = offset
        if offset <= applied.get(partition, -1):
            plan.stats["replayed"] += 1
            continue
        if not verdict.ok:
            plan.stats[f"invalid:{verdict.reason}"] += 1
            continue
        event = verdict.event
        if event["event_type"] in CONTROL_TYPES:
            plan.stats["control"] += 1
            continue
        if event["event_id"] in seen_ids:
            plan.stats["duplicate"] += 1
            continue
        seen_ids.add(event["event_id"])
        plan.new_ids.append(event["event_id"])
        delta = plan.users.get(event["user_id"])
        if delta is None:
            delta = plan.users[event["user_id"]] = UserDelta()
        delta.events += 1
        delta.amount_cents += round(event["amount"] * 100)
        delta.last_event_ms = max(delta.last_event_ms, verdict.event_time_ms)
        delta.types[event["event_type"]] += 1
        plan.stats["applied"] += 1
    return plan


# -- Redis: the idempotent write -------------------------------------------------------------------


# KEYS[1] = owners hash; ARGV[1] = worker name, ARGV[2..] = partitions: delete those still owned by it.
_RELEASE = """
local removed = 0
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then
    removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return removed
"""


class EnricherStore:
    """Applies batches to Redis atomically. Blocking I/O; raises redis.RedisError when Redis is down."""

    def __init__(
        self,
        client: redis.Redis,
        group: str,
        topic: str,
        dedup_ttl: float = DEDUP_TTL,
        max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ):
        self.redis = client
        self.prefix = key_prefix(group)
        self.topic = topic
        self.dedup_ttl = int(dedup_ttl)
        self.max_bytes = max_bytes

    @property
    def owners_key(self) -> str:
        return f"{self.prefix}:owners:{self.topic}"

    def owners(self) -> dict[int, str]:
        return {int(p): name.decode() for p, name in self.redis.hgetall(self.owners_key).items()}

    def set_owner(self, partitions: list[int], name: str) -> None:
        self.redis.hset(self.owners_key, mapping=dict.fromkeys(partitions, name))

    def release(self, partitions: list[int], name: str) -> int:
        """Forget `name` as the owner of `partitions`, leaving any partition someone else already took.

        A leaving worker's revoke can reach Redis after the new owner's assign (librdkafka may send the
        LeaveGroup before the close-time revoke callback has run), so an unconditional HDEL could erase
        the new owner. Returns how many entries were removed."""
        return int(self.redis.eval(_RELEASE, 1, self.owners_key, name, *partitions))

    def stats(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.redis.hgetall(f"{self.prefix}:stats").items()}

    def user_key(self, user_id: str) -> str:
        return f"{self.prefix}:user:{user_id}"

    def applied_key(self, partition: int) -> str:
        return f"{self.prefix}:applied:{self.topic}:{partition}"

    def applied_offsets(self, partitions: Iterable[int]) -> dict[int, int]:
        """The last applied offset of each of `partitions` that has one."""
        parts = list(partitions)
        values = self.redis.mget([self.applied_key(p) for p in parts]) if parts else []
        return {p: int(v) for p, v in zip(parts, values, strict=True) if v is not None}

    def apply(self, records: list[tuple[int, int, bytes | None]]) -> BatchPlan:
        """Apply one batch: user updates, seen ids, stats and applied offsets in one MULTI/EXEC."""
        decoded = decode(records, self.max_bytes)
        partitions = sorted({p for p, _, _ in records})
        offset_keys = [self.applied_key(p) for p in partitions]
        with self.redis.pipeline(transaction=True) as tx:
            while True:
                try:
                    tx.watch(*offset_keys)
                    stored = tx.mget(offset_keys)
                    applied = {p: int(v) for p, v in zip(partitions, stored, strict=True) if v is not None}
                    seen = self._seen(candidate_ids(decoded, applied))
                    plan = plan_batch(decoded, applied, seen)
                    last = self._last_event_ms(plan.users)
                    tx.multi()
                    self._write(tx, plan, applied, last)
                    tx.execute()
                    return plan
                except redis.WatchError:
                    # Another owner of one of these partitions wrote meanwhile: re-read and re-plan.
                    log.info(
                        "applied offset moved under us; re-planning the batch",
                        extra={"partitions": partitions},
                    )

    def _seen(self, ids: list[str]) -> list[str]:
        if not ids:
            return []
        found = self.redis.mget([f"{self.prefix}:seen:{i}" for i in ids])
        return [i for i, v in zip(ids, found, strict=True) if v is not None]

    def _last_event_ms(self, users: Mapping[str, UserDelta]) -> dict[str, int]:
        if not users:
            return {}
        reads = self.redis.pipeline(transaction=False)
        for user in users:
            reads.hget(self.user_key(user), "last_event_ms")
        return {u: int(v) for u, v in zip(users, reads.execute(), strict=True) if v is not None}

    def _write(
        self, tx: redis.client.Pipeline, plan: BatchPlan, applied: Mapping[int, int], last: Mapping[str, int]
    ) -> None:
        for user, d in plan.users.items():
            key = self.user_key(user)
            tx.hincrby(key, "events", d.events)
            tx.hincrby(key, "amount_cents", d.amount_cents)
            for event_type, n in d.types.items():
                tx.hincrby(key, f"type:{event_type}", n)
            if d.last_event_ms > last.get(user, -1):
                tx.hset(
                    key,
                    mapping={
                        "last_event_ms": d.last_event_ms,
                        "last_event_time": format_event_time(d.last_event_ms),
                    },
                )
        for event_id in plan.new_ids:
            tx.set(f"{self.prefix}:seen:{event_id}", 1, ex=self.dedup_ttl)
        for name, n in plan.stats.items():
            tx.hincrby(f"{self.prefix}:stats", name, n)
        for partition, offset in plan.applied.items():
            if offset > applied.get(partition, -1):
                tx.set(self.applied_key(partition), offset)


# -- the consumer loop ---------------------------------------------------------------------------


@dataclass
class WorkerSettings:
    """Everything a worker process needs. Plain data: it crosses the process boundary as JSON."""

    bootstrap: str
    redis_url: str
    topic: str = "orders"
    group: str = "watchtower-enricher"
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    workers: WorkersConfig = field(default_factory=WorkersConfig)
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    dedup_ttl: float = DEDUP_TTL
    name: str = "enricher"
    # Records per second this worker processes at most (None: as fast as it can). Stands in for a costly
    # enrichment (a lookup per record), so capacity grows with the worker count on a small machine too.
    max_rate: float | None = None


class EnricherWorker:
    """One group member. `run()` blocks until `stop()` (or SIGTERM/SIGINT via `install_signal_handlers`)."""

    def __init__(self, settings: WorkerSettings, parent_pid: int | None = None):
        self.s = settings
        self.parent_pid = parent_pid
        self._stop = threading.Event()
        self._consumer: Consumer | None = None
        self._store: EnricherStore | None = None
        self._uncommitted: dict[
            int, int
        ] = {}  # partition -> next offset to commit, applied but not committed
        self.totals: Counter[str] = Counter()

    def stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    # rebalance callbacks run inside consume(), between batches: everything consumed is applied by then.
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info(
            "partitions assigned",
            extra={"worker": self.s.name, "partitions": [p.partition for p in partitions]},
        )
        self._record_owner(partitions, owned=True)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info(
            "partitions revoked",
            extra={"worker": self.s.name, "partitions": [p.partition for p in partitions]},
        )
        self._commit({p.partition for p in partitions})
        self._record_owner(partitions, owned=False)

    def _record_owner(self, partitions: list[TopicPartition], owned: bool) -> None:
        """Who holds which partition, for people and tests (`<prefix>:owners:<topic>`); best effort."""
        if self._store is None or not partitions:
            return
        try:
            if owned:
                self._store.set_owner([p.partition for p in partitions], self.s.name)
            else:
                self._store.release([p.partition for p in partitions], self.s.name)
        except redis.RedisError as exc:
            log.warning("cannot record partition owners", extra={"error": str(exc)})

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Someone else owns them now: committing would be refused. Redis offsets keep us exact anyway.
        log.warning(
            "partitions lost", extra={"worker": self.s.name, "partitions": [p.partition for p in partitions]}
        )
        for p in partitions:
            self._uncommitted.pop(p.partition, None)

    def _commit(self, only: set[int] | None = None) -> None:
        offsets = [
            TopicPartition(self.s.topic, p, o)
            for p, o in self._uncommitted.items()
            if only is None or p in only
        ]
        if not offsets or self._consumer is None:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("offset commit failed; Redis holds the applied offsets", extra={"error": str(exc)})
            return
        for tp in offsets:
            self._uncommitted.pop(tp.partition, None)

    def run(self) -> Counter[str]:
        store = self._store = EnricherStore(
            redis.Redis.from_url(self.s.redis_url),
            self.s.group,
            self.s.topic,
            self.s.dedup_ttl,
            self.s.max_event_bytes,
        )
        c = self._consumer = make_consumer(
            self.s.kafka,
            self.s.bootstrap,
            self.s.group,
            **{
                "client.id": f"watchtower-{self.s.name}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "partition.assignment.strategy": "cooperative-sticky",
                **group_settings(self.s.workers),
            },
        )
        c.subscribe(
            [self.s.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        log.info(
            "enricher started",
            extra={"worker": self.s.name, "group": self.s.group, "topic": self.s.topic, "pid": os.getpid()},
        )
        try:
            while not self._stop.is_set():
                if self._supervisor_gone():
                    break
                started = time.monotonic()
                msgs = c.consume(BATCH_SIZE, POLL_TIMEOUT)
                records = []
                for m in msgs:
                    if m.error() is None:
                        records.append((m.partition(), m.offset(), m.value()))
                    else:
                        self._log_error(m)
                if records:
                    self._apply(store, records)
                    # Redis has the batch, Kafka not yet its offsets: a crash here means redelivery.
                    failpoints.hit(
                        failpoints.AFTER_WRITE_BEFORE_COMMIT,
                        when=partial(any_key_starts_with, msgs),
                    )
                    self._commit()
                    if self.s.max_rate:
                        self._stop.wait(len(records) / self.s.max_rate - (time.monotonic() - started))
        finally:
            self._commit()
            c.close()  # leaves the group now, so the others take over at once
            store.redis.close()
            log.info("enricher stopped", extra={"worker": self.s.name, **self.totals})
        return self.totals

    def _supervisor_gone(self) -> bool:
        """The pool that started this worker died (it was re-parented): stop, so no orphan keeps the group."""
        if self.parent_pid is None or os.getppid() == self.parent_pid:
            return False
        if not self._stop.is_set():
            log.warning("supervisor gone; stopping", extra={"worker": self.s.name})
            self.stop()
        return True

    def _apply(self, store: EnricherStore, records: list[tuple[int, int, bytes | None]]) -> None:
        # The batch is applied before anything else is consumed; while Redis is down we wait here
        # (still serving the group through librdkafka's background heartbeats up to max.poll.interval).
        while True:
            try:
                plan = store.apply(records)
                break
            except redis.RedisError as exc:
                log.warning(
                    "redis write failed; retrying the batch", extra={"worker": self.s.name, "error": str(exc)}
                )
                # A supervisor killed while Redis is down must not leave this worker retrying forever.
                if self._supervisor_gone() or self._stop.wait(REDIS_RETRY):
                    return  # not applied, not committed: redelivered to whoever owns the partitions next
        self.totals.update(plan.stats)
        for partition, offset in plan.applied.items():
            self._uncommitted[partition] = offset + 1

    def _log_error(self, m: Message) -> None:
        err: KafkaError = m.error()
        log.log(
            logging.ERROR if err.fatal() else logging.WARNING,
            "consume error: %s",
            err.str(),
            extra={"code": err.name()},
        )
        if err.fatal():
            self.stop()


def any_key_starts_with(msgs: list[Message], prefix: str) -> bool:
    """Whether a consumed record's key starts with `prefix` (what a failpoint aims at)."""
    want = prefix.encode()
    return any((m.key() or b"").startswith(want) for m in msgs)


def run_worker(settings: WorkerSettings, parent_pid: int | None = None) -> int:
    worker = EnricherWorker(settings, parent_pid)
    worker.install_signal_handlers()
    worker.run()
    return 0
