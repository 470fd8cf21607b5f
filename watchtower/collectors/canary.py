"""Canary events: known latency even when the pipeline is idle.

Every cycle the collector
  1. looks up, in one MGET, the `wt:canary:<event_id>` key of every canary still pending: the pipeline
     writes it (value = visible_at, epoch ms) when the canary's batch reached Redis, and nothing else of a
     canary anywhere (pipelines/spark/redis_sink.py; names in watchtower/contract.py). latency = visible_at - event_time, the same
     definition as the e2e stream, so the poll cadence does not blur it;
  2. counts canaries pending longer than `lost_after` as lost and forgets them;
  3. sends the next round: one canary per partition of the pipeline topic (or one, round robin), each a
     valid contract event with event_type "canary", a fresh event_id and event_time = now.

A canary counts as sent when the broker acknowledged it; the producer is flushed within `timeout`, and
an acknowledgement that arrives later is picked up by the next cycle's poll.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import redis
from confluent_kafka import KafkaException, Producer
from pydantic import Field

from watchtower.collectors.base import BuildContext, CollectorKind, CollectorSection
from watchtower.collectors.redis_stream import connect, redis_errors
from watchtower.contract import CANARY_PREFIX, canary_event, encode, key_of
from watchtower.core.types import Kind, MetricSpec, Reading, Sample, labels
from watchtower.core.units import Duration
from watchtower.kafka.clients import producer_from


class CanaryConfig(CollectorSection):
    """Marked canary events written into the pipeline topic; their visibility in Redis is polled.

    Off by default: it writes into the pipeline's input topic. `interval` is how often a round is sent.
    """

    enabled: bool = False
    topic: str | None = Field(default=None, description="default: pipeline.topic")
    # every_partition: one canary per partition per round; round_robin: one per round, next partition.
    mode: Literal["every_partition", "round_robin"] = "every_partition"
    # A canary not visible in Redis this long after it was sent counts as lost.
    lost_after: Duration = Field(default=60.0, gt=0)
    key_prefix: str = CANARY_PREFIX
    max_pending: int = Field(default=10_000, ge=1)


SPECS = (
    MetricSpec(
        "watchtower_canary_latency_seconds",
        Kind.GAUGE,
        "Event time to visible in Redis of the latest canary seen on the partition",
        ("partition", "topic"),
    ),
    MetricSpec("watchtower_canary_sent_total", Kind.COUNTER, "Canaries the broker acknowledged", ("topic",)),
    MetricSpec(
        "watchtower_canary_received_total", Kind.COUNTER, "Canaries that became visible in Redis", ("topic",)
    ),
    MetricSpec(
        "watchtower_canary_lost_total",
        Kind.COUNTER,
        "Canaries not visible in Redis within daemon.collectors.canary.lost_after",
        ("topic",),
    ),
    MetricSpec(
        "watchtower_canary_send_failures_total",
        Kind.COUNTER,
        "Canaries the broker refused or did not acknowledge in time",
        ("topic",),
    ),
    MetricSpec(
        "watchtower_canary_pending", Kind.GAUGE, "Canaries sent and not yet visible nor lost", ("topic",)
    ),
)


class CanaryError(RuntimeError):
    """The canary round could not be sent or checked."""


@dataclass(frozen=True, slots=True)
class Pending:
    event_id: str
    partition: int
    sent_ms: int  # the canary's event_time


def next_partitions(partitions: list[int], mode: str, cursor: int) -> tuple[list[int], int]:
    """The partitions of this round and the round-robin cursor after it. Pure."""
    if not partitions:
        return [], cursor
    if mode == "every_partition":
        return list(partitions), cursor
    return [partitions[cursor % len(partitions)]], (cursor + 1) % len(partitions)


class CanaryCollector:
    """Collector `canary`. Producer and Redis client are created on first use; `close()` releases them.

    `collect` raises `RedisUnavailable` when Redis does not answer (pending canaries are kept and resolved
    later) and `CanaryError` when the topic's metadata cannot be read.
    """

    specs = SPECS

    def __init__(
        self,
        config: CanaryConfig,
        client_config: Mapping[str, Any],
        redis_url: str,
        topic: str,
        name: str = "canary",
        ids: Callable[[], str] | None = None,
    ):
        self.name = name
        self.interval = config.interval
        self.config = config
        self.topic = topic
        self._client_config = dict(client_config)
        self._url = redis_url
        self._ids = ids or (lambda: f"canary-{uuid.uuid4().hex}")
        self._producer: Producer | None = None
        self._redis: redis.Redis | None = None
        self.pending: dict[str, Pending] = {}
        self.latency: dict[int, float] = {}
        self.sent = 0
        self.received = 0
        self.lost = 0
        self.send_failures = 0
        self._rr = 0
        self._known_partitions: set[int] = set()

    def producer(self) -> Producer:
        if self._producer is None:
            self._producer = producer_from(
                self._client_config,
                "canary",
                **{
                    "linger.ms": 0,
                    "enable.idempotence": False,
                    # A canary older than lost_after is worthless: let librdkafka give up on it by then.
                    "message.timeout.ms": int(self.config.lost_after * 1000),
                },
            )
        return self._producer

    def _client(self) -> redis.Redis:
        if self._redis is None:
            self._redis = connect(self._url, self.config.timeout)
        return self._redis

    def collect(self, now: float) -> Reading:
        producer = self.producer()
        producer.poll(0)  # acknowledgements that came after the last flush
        self.check(now)
        partitions = self._partitions()
        round_, self._rr = next_partitions(partitions, self.config.mode, self._rr)
        now_ms = int(now * 1000)
        for p in round_:
            self._send(producer, p, now_ms)
        producer.flush(self.config.timeout)
        self._known_partitions = set(partitions)
        return self.reading(now, sent_this_cycle=len(round_))

    def reading(self, now: float, sent_this_cycle: int = 0) -> Reading:
        """The samples of the current state (what `collect` returns after its round)."""
        tl = labels(topic=self.topic)
        samples = [
            Sample("watchtower_canary_latency_seconds", labels(topic=self.topic, partition=p), v)
            for p, v in sorted(self.latency.items())
            if p in self._known_partitions
        ]
        samples += [
            Sample("watchtower_canary_sent_total", tl, float(self.sent)),
            Sample("watchtower_canary_received_total", tl, float(self.received)),
            Sample("watchtower_canary_lost_total", tl, float(self.lost)),
            Sample("watchtower_canary_send_failures_total", tl, float(self.send_failures)),
            Sample("watchtower_canary_pending", tl, float(len(self.pending))),
        ]
        detail = {
            "topic": self.topic,
            "partitions": len(self._known_partitions),
            "sent_this_cycle": sent_this_cycle,
            "pending": len(self.pending),
        }
        return Reading(collector=self.name, at=now, samples=tuple(samples), detail=detail)

    def check(self, now: float) -> None:
        """Resolve pending canaries that became visible; count the overdue ones as lost."""
        if self.pending:
            ids = list(self.pending)
            prefix = self.config.key_prefix
            with redis_errors("reading canary keys"):
                values = self._client().mget([prefix + i for i in ids])
            for event_id, raw in zip(ids, values, strict=True):
                if raw is None:
                    continue
                p = self.pending.pop(event_id)
                self.latency[p.partition] = max(0.0, (int(raw) - p.sent_ms) / 1000)
                self.received += 1
        overdue = [
            i for i, p in self.pending.items() if now * 1000 - p.sent_ms > self.config.lost_after * 1000
        ]
        for i in overdue:
            del self.pending[i]
            self.lost += 1

    def _partitions(self) -> list[int]:
        try:
            md = self.producer().list_topics(self.topic, timeout=self.config.timeout)
        except KafkaException as exc:
            raise CanaryError(f"metadata of {self.topic}: {exc}") from exc
        t = md.topics.get(self.topic)
        if t is None or t.error is not None:
            raise CanaryError(f"topic {self.topic} does not exist: {t.error if t is not None else 'absent'}")
        return sorted(t.partitions)

    def _send(self, producer: Producer, partition: int, now_ms: int) -> None:
        event = canary_event(now_ms, self._ids())
        pending = Pending(event["event_id"], partition, now_ms)

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                self.send_failures += 1
                return
            self.sent += 1
            if len(self.pending) < self.config.max_pending:
                self.pending[pending.event_id] = pending
            else:
                self.lost += 1  # cannot be tracked: as good as lost, and says so

        try:
            producer.produce(
                self.topic, encode(event), key=key_of(event), partition=partition, on_delivery=on_delivery
            )
        except (BufferError, KafkaException):
            self.send_failures += 1

    def close(self) -> None:
        for close in (
            lambda: self._producer and self._producer.flush(1.0),
            lambda: self._redis and self._redis.close(),
        ):
            try:
                close()
            except Exception:  # noqa: BLE001 - close must not raise
                pass
        self._producer = None
        self._redis = None


def build(config: CanaryConfig, ctx: BuildContext) -> CanaryCollector | None:
    if not config.enabled or not ctx.redis_url:
        return None
    return CanaryCollector(config, ctx.librdkafka(), ctx.redis_url, config.topic or ctx.pipeline.topic)


# Off by default (it writes into the pipeline's topic); the demo turns it on.
KIND = CollectorKind("canary", CanaryConfig, build, SPECS, demo={"enabled": True, "interval": 5.0})
