"""Consumer-group lag, read from Kafka with batched admin calls.

One cycle: list groups -> describe them (one call) -> fetch every retained group's committed offsets
(one request per group, all in flight at once) -> read topic metadata -> one ListOffsets(latest) for
every partition of the topics those groups read -> fetch the record at each new committed offset with a
separate assign()-only consumer (bounded, cached) for lag in seconds. The arithmetic lives in
`lag_tracker` and `lag_model`; this file only talks to Kafka.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from watchtower.collectors.base import Reading
from watchtower.collectors.lag_tracker import SPECS, ClusterView, GroupInfo, LagTracker, TimestampKey
from watchtower.config.daemon import KafkaLagConfig


class KafkaLagError(RuntimeError):
    """A cycle could not read what it needs from Kafka; `stage` names the call that failed."""

    def __init__(self, stage: str, cause: BaseException):
        self.stage = stage
        code = (
            cause.args[0].name()
            if isinstance(cause, KafkaException) and cause.args and isinstance(cause.args[0], KafkaError)
            else type(cause).__name__
        )
        super().__init__(f"{stage}: {code}: {cause}")


def _state_name(state: Any) -> str:
    name = getattr(state, "name", str(state)).lower()
    return name if name else "unknown"


class KafkaLagCollector:
    """Collector `kafka_lag`. Clients are created on first use and re-used; `close()` releases them."""

    specs = SPECS

    def __init__(self, config: KafkaLagConfig, client_config: Mapping[str, Any], name: str = "kafka_lag"):
        self.name = name
        self.config = config
        self.interval = config.interval
        self.timeout = config.timeout
        self._client_config = dict(client_config)
        self._admin: AdminClient | None = None
        self._probe: Consumer | None = None
        self._timings: dict[str, float] = {}
        # group -> (partitions it had committed offsets for, when it was last asked in full)
        self._group_topics: dict[str, tuple[list[tuple[str, int]], float]] = {}
        self.tracker = LagTracker(config, collector=name)

    # -- clients ---------------------------------------------------------------------------------------

    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient({**self._client_config, "client.id": "watchtower-lag"})
        return self._admin

    def probe(self) -> Consumer:
        if self._probe is None:
            self._probe = Consumer(
                {
                    **self._client_config,
                    "client.id": "watchtower-lag-probe",
                    "group.id": self.config.probe_group_id,  # never joins or commits: assign() only
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "enable.partition.eof": True,
                    "auto.offset.reset": "earliest",
                    # Bounded fetches: we need one record per partition, not a prefetch of the log.
                    "max.partition.fetch.bytes": 16 * 1024,
                    "queued.min.messages": 1,
                    "queued.max.messages.kbytes": 1024,
                    "fetch.wait.max.ms": 50,
                }
            )
        return self._probe

    def close(self) -> None:
        try:
            if self._probe is not None:
                self._probe.close()
        except Exception:  # noqa: BLE001 - close must not raise
            pass
        self._probe = None
        self._admin = None

    # -- the cycle -------------------------------------------------------------------------------------

    def collect(self, now: float) -> Reading:
        self._timings = {}
        deadline = time.monotonic() + max(self.timeout * 3, self.interval * 0.8)
        view = self.read_view(now)
        with self._timed("observe"):
            wanted = self.tracker.observe(view, now)
        with self._timed("fetch_timestamps"):
            fetched = (
                self.fetch_timestamps(wanted, min(deadline, time.monotonic() + self.timeout))
                if wanted
                else {}
            )
        with self._timed("compute"):
            r = self.tracker.reading(view, now, fetched)
        # Where the cycle's time went, for /api/v1/status and bench/lag_cycle.py.
        return Reading(r.collector, r.at, r.samples, {**r.detail, "timings": dict(self._timings)})

    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self._timings[stage] = round(time.perf_counter() - started, 6)

    def _wait(self, stage: str, future: Future) -> Any:
        try:
            return future.result(timeout=self.timeout + 1.0)
        except Exception as exc:  # KafkaException, TimeoutError
            raise KafkaLagError(stage, exc) from exc

    def read_view(self, now: float) -> ClusterView:
        admin = self.admin()
        t = self.timeout
        errors: list[str] = []
        with self._timed("list_groups"):
            listing = self._wait("list_consumer_groups", admin.list_consumer_groups(request_timeout=t))
        if listing.errors:
            # A partial listing cannot tell a gone group from an unreachable coordinator: fail the cycle
            # rather than drop live groups' series.
            raise KafkaLagError("list_consumer_groups", KafkaException(listing.errors[0]))
        listed = {g.group_id: g for g in listing.valid if self.tracker.watches_group(g.group_id)}
        names = sorted(listed)
        # The listing already carries each group's state, which is all retention needs; so the describe
        # (for member counts) and the offset fetches all go out at once.
        groups: dict[str, GroupInfo] = {g: GroupInfo(_state_name(listed[g].state)) for g in names}
        retained = self.tracker.retained_groups(groups, now)
        with self._timed("metadata"):
            try:
                metadata = admin.list_topics(timeout=t)
            except KafkaException as exc:
                raise KafkaLagError("metadata", exc) from exc
            partitions_of = {
                name: sorted(md.partitions) for name, md in metadata.topics.items() if md.error is None
            }
        with self._timed("offsets_and_describe"):
            described = admin.describe_consumer_groups(names, request_timeout=t) if names else {}
            futures = {g: self._offset_requests(g, partitions_of, now) for g in retained}
            for g, fut in described.items():
                try:
                    d = fut.result(timeout=t + 1.0)
                    groups[g] = GroupInfo(_state_name(d.state), len(d.members))
                except Exception as exc:  # noqa: BLE001 - a group we cannot describe is still reported
                    errors.append(f"describe_consumer_groups {g}: {exc}")
            committed: dict[str, dict[tuple[str, int], int]] = {}
            watches_topic = self.tracker.watches_topic
            for g, (group_futures, full) in futures.items():
                offsets: dict[tuple[str, int], int] = {}
                try:
                    for fut in group_futures:
                        for tp in fut.result(timeout=t + 1.0).topic_partitions:
                            if tp.offset >= 0 and tp.error is None and watches_topic(tp.topic):
                                offsets[(tp.topic, tp.partition)] = tp.offset
                except Exception as exc:  # noqa: BLE001
                    errors.append(f"list_consumer_group_offsets {g}: {exc}")
                    self._group_topics.pop(g, None)  # rediscover next cycle
                    continue
                committed[g] = offsets
                asked_at = now if full else self._group_topics[g][1]
                self._group_topics[g] = (sorted(offsets), asked_at)
        for gone in self._group_topics.keys() - set(retained):
            del self._group_topics[gone]
        if len(futures) and not committed:
            raise KafkaLagError("list_consumer_group_offsets", RuntimeError("; ".join(errors[-3:])))

        wanted_topics = {t_ for offsets in committed.values() for t_, _ in offsets}
        with self._timed("high_watermarks"):
            hwms = self.high_watermarks(wanted_topics, partitions_of) if wanted_topics else {}
        # A topic that is gone has no watermark: drop its committed offsets (no ghost series).
        for offsets in committed.values():
            for tp in [tp for tp in offsets if tp not in hwms]:
                del offsets[tp]
        return ClusterView(groups=groups, committed=committed, high_watermarks=hwms, errors=tuple(errors))

    def _offset_requests(
        self, group: str, partitions_of: Mapping[str, list[int]], now: float
    ) -> tuple[list[Future], bool]:
        """The committed-offset fetches for one group, sent at once, and whether they ask for everything.

        A group seen before is asked for the partitions it had offsets for, in chunks of
        `list_offsets_batch` (tansu answers "all partitions of the group" several times slower than a few
        explicit chunks). Every `group_topics_refresh` seconds, and for a group seen first, it is asked for
        everything it has, which is how a group starting on a new topic or partition is found.
        """
        admin, t = self.admin(), self.timeout
        known = self._group_topics.get(group)
        if known is None or now - known[1] >= self.config.group_topics_refresh:
            request = [ConsumerGroupTopicPartitions(group)]
            return list(admin.list_consumer_group_offsets(request, request_timeout=t).values()), True
        tps = [TopicPartition(topic, p) for topic, p in known[0] if topic in partitions_of]
        size = self.config.list_offsets_batch
        futures = [
            fut
            for i in range(0, len(tps), size)
            for fut in admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group, tps[i : i + size])], request_timeout=t
            ).values()
        ]
        return futures, False

    def high_watermarks(
        self, topics: Iterable[str], partitions_of: Mapping[str, list[int]]
    ) -> dict[tuple[str, int], int]:
        admin = self.admin()
        request = {
            TopicPartition(t, p): OffsetSpec.latest() for t in topics for p in partitions_of.get(t, ())
        }
        if not request:
            return {}
        # One ListOffsets per `list_offsets_batch` partitions, all in flight at once: a single request for
        # 10,000 partitions costs tansu (and librdkafka) several times more than twenty of 500.
        items = list(request.items())
        size = self.config.list_offsets_batch
        futures: dict[TopicPartition, Future] = {}
        for i in range(0, len(items), size):
            futures.update(admin.list_offsets(dict(items[i : i + size]), request_timeout=self.timeout))
        out: dict[tuple[str, int], int] = {}
        failed: BaseException | None = None
        for tp, fut in futures.items():
            try:
                out[(tp.topic, tp.partition)] = fut.result(timeout=self.timeout + 1.0).offset
            except Exception as exc:  # noqa: BLE001 - one bad partition does not sink the cycle
                failed = exc
        if failed is not None and not out:
            raise KafkaLagError("list_offsets", failed)
        return out

    def fetch_timestamps(self, keys: list[TimestampKey], deadline: float) -> dict[TimestampKey, float | None]:
        """Timestamp (epoch s) of the first record at or after each (topic, partition, offset).

        A partition can be wanted at several offsets (one per group), and one assignment holds one offset
        per partition, so the work goes in rounds. What the deadline cuts off is left out (the tracker
        interpolates those) and tried again next cycle.
        """
        by_tp: dict[tuple[str, int], list[int]] = defaultdict(list)
        for t, p, o in keys:
            by_tp[(t, p)].append(o)
        out: dict[TimestampKey, float | None] = {}
        consumer = self.probe()
        rounds = max((len(v) for v in by_tp.values()), default=0)
        try:
            for r in range(rounds):
                wanted = {tp: offs[r] for tp, offs in by_tp.items() if len(offs) > r}
                self._fetch_round(consumer, wanted, deadline, out)
                if time.monotonic() >= deadline:
                    break
        finally:
            try:
                consumer.unassign()
            except KafkaException:
                pass
        return out

    def _fetch_round(
        self,
        consumer: Consumer,
        wanted: dict[tuple[str, int], int],
        deadline: float,
        out: dict[TimestampKey, float | None],
    ) -> None:
        consumer.assign([TopicPartition(t, p, o) for (t, p), o in wanted.items()])
        pending = dict(wanted)
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(
                num_messages=1000, timeout=min(0.1, max(0.0, deadline - time.monotonic()))
            ):
                tp = (msg.topic(), msg.partition())
                if tp not in pending:
                    continue
                offset = pending[tp]
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        out[(tp[0], tp[1], offset)] = None  # nothing there (yet): interpolate
                        del pending[tp]
                    continue
                if msg.offset() < offset:
                    continue
                ts_type, ts_ms = msg.timestamp()
                out[(tp[0], tp[1], offset)] = None if ts_type == TIMESTAMP_NOT_AVAILABLE else ts_ms / 1000.0
                del pending[tp]
                consumer.pause([TopicPartition(tp[0], tp[1])])
        consumer.unassign()
