"""The generator's I/O: sends `EventFactory` records to Kafka at a target rate and keeps the `Manifest`.

    manifest = Generator(cfg.generator, bootstrap, kafka=cfg.kafka, topic="orders").run(count=100_000)

Records go out in batches sized by a token bucket (one `produce` call each, one `poll(0)` per batch to
serve delivery reports), so the rate holds well above 50k events/s. Every delivery report is counted;
a failed one is counted by error name and logged once per name, never dropped silently.

`finish()` (called by `run`) flushes, then writes one `marker` event per partition, each flushed on
its own so it travels as a single-record batch: the embedded broker's ListOffsets reports the base
offset of the last batch + 1 as the high watermark, which a one-record final batch makes exact.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from pipelines.events import DEFAULT_MAX_EVENT_BYTES, encode, new_event
from pipelines.generator import MARKER, EventFactory, Manifest, Record, TokenBucket
from watchtower.config.models import GeneratorConfig, KafkaConfig
from watchtower.kafka import KafkaClientError, producer

log = logging.getLogger(__name__)

MARKER_USER = "watchtower-generator"
MAX_BATCH = 5_000  # records per loop turn: bounds the time between delivery-report polls
FLUSH_TIMEOUT = 60.0

ProgressFn = Callable[[Manifest, float], None]  # (manifest so far, events/s over the last interval)


class Generator:
    """Produces one run of order events. Not thread-safe; `stop_event` may be set from any thread."""

    def __init__(
        self,
        config: GeneratorConfig,
        bootstrap: str | None,
        *,
        kafka: KafkaConfig | None = None,
        topic: str = "orders",
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        seed: int | None = None,
        track_ids: bool = False,
        track_offsets: bool = False,
        on_progress: ProgressFn | None = None,
        progress_interval: float = 0.5,
        producer_overrides: dict[str, Any] | None = None,
    ):
        self.config = config
        self.bootstrap = bootstrap
        self.kafka = kafka or KafkaConfig()
        self.topic = topic
        self.factory = EventFactory(
            random.Random(seed),
            users=config.users,
            duplicate_ratio=config.duplicate_ratio,
            malformed_ratio=config.malformed_ratio,
            late_ratio=config.late_ratio,
            late_by=config.late_by,
            max_event_bytes=max_event_bytes,
        )
        self.manifest = Manifest(track_ids=track_ids, track_offsets=track_offsets)
        self.on_progress = on_progress
        self.progress_interval = progress_interval
        self._overrides = producer_overrides or {}
        self._producer: Producer | None = None
        self._logged_errors: set[str] = set()

    # -- delivery reports -------------------------------------------------------------------------

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.manifest.delivery(None, msg.partition())
            return
        name = err.name()
        self.manifest.delivery(name)
        if name not in self._logged_errors:  # once per error name; the manifest has the counts
            self._logged_errors.add(name)
            log.error("delivery failed: %s", err.str(), extra={"code": name, "topic": self.topic})

    def _tracked(self, rec: Record) -> Callable[[KafkaError | None, Message], None]:
        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            self._on_delivery(err, msg)
            if err is None:
                self.manifest.records.append(
                    (msg.partition(), msg.offset(), rec.kind, rec.sub_kind, rec.event_id)
                )

        return on_delivery

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            self._producer = producer(
                self.kafka, self.bootstrap, on_delivery=self._on_delivery, **self._overrides
            )
        return self._producer

    # -- the run ----------------------------------------------------------------------------------

    def run(
        self,
        count: int | None = None,
        duration: float | None = None,
        stop_event: threading.Event | None = None,
        finish: bool = True,
    ) -> Manifest:
        """Send until `count` events, `duration` seconds or `stop_event`, whichever comes first.

        With neither `count` nor `duration` it runs until `stop_event` is set. Then, unless
        `finish=False`, flushes and writes the markers. Returns the manifest.
        """
        if count is None and duration is None and stop_event is None:
            raise ValueError("give count, duration or stop_event, or the run never ends")
        p = self.producer
        manifest = self.manifest
        add = manifest.add
        produce = p.produce
        topic = self.topic
        clock = time.monotonic
        start = clock()
        manifest.started_at = time.time()
        deadline = start + duration if duration is not None else None
        bucket = TokenBucket(self.config.rate, now=start)
        remaining = count if count is not None else -1
        next_report, last_sent, last_report = start + self.progress_interval, 0, start

        while remaining != 0:
            now = clock()
            if (deadline is not None and now >= deadline) or (stop_event is not None and stop_event.is_set()):
                break
            if self.on_progress is not None and now >= next_report:
                self.on_progress(manifest, (manifest.sent - last_sent) / (now - last_report))
                next_report, last_sent, last_report = now + self.progress_interval, manifest.sent, now
            n = bucket.take(now, MAX_BATCH if remaining < 0 else min(MAX_BATCH, remaining))
            if n == 0:
                # Serve delivery reports while waiting for the next token; returns early on a report.
                p.poll(min(bucket.wait(now), 0.01))
                continue
            for rec in self.factory.batch(n, int(time.time() * 1000)):
                self._produce(produce, topic, rec)
                add(rec)
            if remaining > 0:
                remaining -= n
            p.poll(0)
        manifest.sending_done_at = time.time()
        if finish:
            self.finish()
        manifest.finished_at = time.time()
        return manifest

    def _produce(self, produce: Callable[..., None], topic: str, rec: Record) -> None:
        extra = {"on_delivery": self._tracked(rec)} if self.manifest.track_offsets else {}
        while True:
            try:
                produce(topic, rec.value, rec.key, **extra)
                return
            except BufferError:  # the local queue is full: let librdkafka drain it
                self.producer.poll(0.05)

    def finish(self) -> Manifest:
        """Flush everything, then one marker per partition, each in its own single-record batch."""
        p = self.producer
        self._flush()
        try:
            partitions = sorted(p.list_topics(self.topic, timeout=10).topics[self.topic].partitions)
        except Exception as exc:  # noqa: BLE001 - reported as a client error with context
            raise KafkaClientError.wrap(exc, context=f"cannot read the partitions of {self.topic}") from None
        for partition in partitions:
            marker = new_event(MARKER_USER, 0.0, MARKER, int(time.time() * 1000), order_id="marker")
            rec = Record(MARKER_USER.encode(), b"", MARKER, None, marker["event_id"])
            self._produce_marker(partition, encode(marker), rec)
            self.manifest.add(rec)
            self._flush()  # alone in its batch: nothing else is queued and it is flushed before the next
        if self.on_progress is not None:
            self.on_progress(self.manifest, self.manifest.send_rate)
        return self.manifest

    def _produce_marker(self, partition: int, value: bytes, rec: Record) -> None:
        extra = {"on_delivery": self._tracked(rec)} if self.manifest.track_offsets else {}
        self.producer.produce(self.topic, value, MARKER_USER.encode(), partition=partition, **extra)

    def _flush(self) -> None:
        left = self.producer.flush(FLUSH_TIMEOUT)
        if left:
            log.error(
                "records still undelivered after flush",
                extra={"pending": left, "timeout_s": FLUSH_TIMEOUT, "topic": self.topic},
            )

    def close(self) -> None:
        if self._producer is not None:
            self._flush()
            self._producer = None
