"""Consumer-group lag, read from Kafka with batched admin calls.

One cycle: list groups -> describe them (one call) -> fetch every retained group's committed offsets
(one request per group, all in flight at once) -> read topic metadata -> one ListOffsets(latest) for
every partition of the topics those groups read -> hand the new lagging committed offsets to the timestamp
probe (`probe.py`, its own thread and consumer) and take the record timestamps it has read so far. The
arithmetic lives in `tracker.py` and `model.py`; this file only talks to Kafka.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from confluent_kafka import (
    OFFSET_END,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from watchtower.collectors.base import BuildContext, CollectorKind
from watchtower.collectors.kafka_lag.config import KafkaLagConfig
from watchtower.collectors.kafka_lag.probe import TimestampProbe
from watchtower.collectors.kafka_lag.tracker import SPECS, ClusterView, GroupInfo, LagTracker, TimestampKey
from watchtower.core.types import Reading
from watchtower.kafka.clients import admin_from, assigned_consumer, serve
from watchtower.kafka.errors import StageError

_LIST_OFFSETS_THREADS = 8  # ListOffsets chunks in flight at once; the threads only wait on the broker


class KafkaLagError(StageError):
    """A cycle could not read what it needs from Kafka; `stage` names the call that failed."""


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
        self.interval_policy = config.interval_policy  # the runner adapts the interval when enabled
        self.timeout = config.timeout
        self._client_config = dict(client_config)
        self._admin: AdminClient | None = None
        self._watermarks: Consumer | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._probe: TimestampProbe | None = None
        self._timings: dict[str, float] = {}
        # group -> (partitions it had committed offsets for, when it was last asked in full)
        self._group_topics: dict[str, tuple[list[tuple[str, int]], float]] = {}
        self.tracker = LagTracker(config, collector=name)

    # -- clients ---------------------------------------------------------------------------------------

    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = admin_from(self._client_config, "lag")
        return self._admin

    def watermarks_client(self) -> Consumer:
        """A consumer used only for ListOffsets: it never subscribes, assigns or commits."""
        if self._watermarks is None:
            self._watermarks = assigned_consumer(
                self._client_config, self.config.probe_group_id, "lag-watermarks"
            )
        return self._watermarks

    def _pool(self) -> ThreadPoolExecutor:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(_LIST_OFFSETS_THREADS, thread_name_prefix="watchtower-lag")
        return self._threads

    def probe(self) -> TimestampProbe:
        if self._probe is None:
            self._probe = TimestampProbe(self._client_config, self.config.probe_group_id, self.timeout)
        return self._probe

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close()
        if self._threads is not None:
            self._threads.shutdown(wait=True)
        try:
            if self._watermarks is not None:
                self._watermarks.close()
        except Exception:  # noqa: BLE001 - close must not raise
            pass
        self._probe = self._threads = self._watermarks = None
        self._admin = None

    # -- the cycle -------------------------------------------------------------------------------------

    def collect(self, now: float) -> Reading:
        self._timings = {}
        deadline = time.monotonic() + max(self.timeout * 3, self.interval * 0.8)
        view = self.read_view(now)
        serve(self._admin, self._watermarks)  # their queued logs and errors (they never poll otherwise)
        with self._timed("observe"):
            wanted = self.tracker.observe(view, now)
        with self._timed("timestamps"):
            fetched, probe_detail = self._timestamps(wanted, deadline)
        with self._timed("compute"):
            r = self.tracker.reading(view, now, fetched)
        # Where the cycle's time went, for /api/v1/status and bench/lag_cycle.py.
        detail = {**r.detail, "timings": dict(self._timings), "timestamp_probe": probe_detail}
        return Reading(r.collector, r.at, r.samples, detail)

    def _timestamps(
        self, wanted: list[TimestampKey], deadline: float
    ) -> tuple[dict[TimestampKey, float | None], dict[str, Any]]:
        """Hand the wanted record timestamps to the probe and take what it has read so far.

        The probe reads on its own thread, so the cycle (and lag in messages) does not wait for it beyond
        `timestamp_wait`; a timestamp not read yet is interpolated this cycle and comes from the record
        in a later one.
        """
        if not wanted and self._probe is None:
            return {}, {"pending": 0, "errors": 0, "last_error": None}
        probe = self.probe()
        probe.request(wanted)
        wait = min(self.config.timestamp_wait, deadline - time.monotonic())
        if wanted and wait > 0:
            probe.wait(wanted, wait)
        # Offsets interpolation cannot place (a group just seen, a daemon just started) would have no lag
        # in seconds at all: wait for those records within this cycle (kafka_lag/estimate.py).
        unplaced = self.tracker.unplaced(wanted)
        wait = min(self.config.first_timestamp_wait, deadline - time.monotonic())
        if unplaced and wait > 0:
            probe.wait(unplaced, wait)
        fetched = probe.take()
        detail = {"pending": probe.pending, "errors": probe.errors, "last_error": probe.last_error}
        return fetched, detail

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
        """ListOffsets(latest) for every partition of `topics`, in chunks of `list_offsets_batch`.

        Through a consumer's `offsets_for_times(OFFSET_END)`, which answers with plain TopicPartitions,
        not `AdminClient.list_offsets`, which builds and resolves one Python future per partition (0.35 s
        of a 0.45 s stage at 10,000 partitions). The chunks go out together from a few threads (the call
        blocks without the GIL): one request of 10,000 partitions costs tansu several times more.
        """
        tps = [TopicPartition(t, p, OFFSET_END) for t in topics for p in partitions_of.get(t, ())]
        if not tps:
            return {}
        size = self.config.list_offsets_batch
        chunks = [tps[i : i + size] for i in range(0, len(tps), size)]
        consumer, timeout = self.watermarks_client(), self.timeout
        out: dict[tuple[str, int], int] = {}
        failed: BaseException | None = None
        for answer in self._pool().map(lambda c: self._offsets_for_times(consumer, c, timeout), chunks):
            if isinstance(answer, BaseException):
                failed = answer
                continue
            for tp in answer:
                if tp.error is None and tp.offset >= 0:
                    out[(tp.topic, tp.partition)] = tp.offset
                else:  # one bad partition does not sink the cycle
                    failed = KafkaException(tp.error) if tp.error is not None else failed
        if failed is not None and not out:
            raise KafkaLagError("list_offsets", failed)
        return out

    @staticmethod
    def _offsets_for_times(
        consumer: Consumer, chunk: list[TopicPartition], timeout: float
    ) -> list[TopicPartition] | BaseException:
        try:
            return consumer.offsets_for_times(chunk, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - counted by the caller
            return exc


def build(config: KafkaLagConfig, ctx: BuildContext) -> KafkaLagCollector | None:
    return KafkaLagCollector(config, ctx.librdkafka()) if config.enabled else None


KIND = CollectorKind("kafka_lag", KafkaLagConfig, build, SPECS, demo={"interval": 2.0})
