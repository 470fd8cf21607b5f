"""Record timestamps for lag in seconds, read in the background so a lag cycle never waits for them.

`TimestampProbe` reads with an `assign()`-only consumer (it never joins a group or commits) on a thread
of its own, one consumer per sweep (see `_run` for why it is not kept). A cycle hands it the
(topic, partition, offset) triples it wants with `request()`, which returns at once, and picks up what
has been read since with `take()`; `wait()` lets a caller give the probe a bounded head start. A
partition wanted at several offsets (one per group) is read at them in turn, lowest first; all
partitions are fetched together, so one sweep costs about one fetch round trip.

Why the consumer is set up the way it is (measured on tansu, librdkafka 2.16):
* partitions are added and removed with `incremental_assign`/`incremental_unassign`, never `pause()`:
  librdkafka keeps an application pause on a partition across `unassign()`/`assign()`, so a paused
  partition assigned again later never fetches (every probe after the first of a partition timed out);
* `fetch.queue.backoff.ms` is small: with `queued.min.messages` 1 the default (1000 ms) parks the
  partition's fetcher for a second after every fetch, and the next offset of the partition waits for it;
* `consume()` is called with a short timeout: it returns only when `num_messages` arrived or the timeout
  passed, so a long timeout is a floor on every sweep.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, TopicPartition

from watchtower.kafka.clients import assigned_consumer

log = logging.getLogger(__name__)

TimestampKey = tuple[str, int, int]  # (topic, partition, offset)

_POLL_S = 0.01  # consume() blocks this long at most: the granularity of a sweep


class TimestampProbe:
    """Reads the timestamp of the first record at or after each requested offset, on its own thread.

    `request`, `take` and `wait` are safe to call from any thread and never do I/O; `request` and `take`
    never block, `wait` blocks at most its timeout. `close` stops the thread and closes the consumer.
    Failures are counted in `errors` (last one in `last_error`) and retried on the next `request`.
    """

    def __init__(self, client_config: Mapping[str, Any], group_id: str, timeout: float):
        self._client_config = dict(client_config)
        self._group_id = group_id
        self.timeout = timeout  # budget of one sweep; what it does not finish is asked for again
        self._lock = threading.Condition()
        self._wanted: set[TimestampKey] = set()
        self._inflight: set[TimestampKey] = set()
        self._results: dict[TimestampKey, float | None] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0
        self.last_error: str | None = None
        self.sweeps = 0

    # -- the caller's side -----------------------------------------------------------------------------

    def request(self, keys: Iterable[TimestampKey]) -> None:
        """Replace the set of wanted timestamps (a key already read or being read is not asked twice)."""
        with self._lock:
            self._wanted = {k for k in keys if k not in self._results and k not in self._inflight}
            if not self._wanted:
                return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="watchtower-lag-probe", daemon=True)
            self._thread.start()
        self._wake.set()

    def take(self) -> dict[TimestampKey, float | None]:
        """Timestamps (epoch s; None: no record or no timestamp there) read since the last `take`."""
        with self._lock:
            out, self._results = self._results, {}
        return out

    def wait(self, keys: Iterable[TimestampKey], timeout: float) -> bool:
        """Block until every key has been read (or given up on this sweep), at most `timeout` seconds."""
        wanted = set(keys)
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self._settled(wanted):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def _settled(self, keys: set[TimestampKey]) -> bool:
        return not (keys & self._wanted or keys & self._inflight)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._wanted | self._inflight)

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    # -- the probe thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                keys, self._wanted = self._wanted, set()
                self._inflight = set(keys)
            if self._stop.is_set() or not keys:
                continue
            consumer: Consumer | None = None
            try:
                consumer = self._consumer()
                self._sweep(consumer, keys, time.monotonic() + self.timeout)
            except Exception as exc:  # noqa: BLE001 - the probe must outlive any broker trouble
                self._failed(exc)
            finally:
                # Closed after every sweep: librdkafka 2.16 crashes the process (SIGSEGV in
                # rd_kafka_metadata_update_op) a few seconds after a topic a live consumer has fetched
                # from is deleted. A consumer that no longer exists cannot.
                if consumer is not None:
                    try:
                        consumer.close()
                    except Exception:  # noqa: BLE001 - close must not raise
                        pass
                self.sweeps += 1
                with self._lock:
                    self._inflight = set()  # what was not read is asked for again by the next request
                    self._lock.notify_all()

    def _failed(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        if message != self.last_error:
            log.warning("lag timestamp probe: %s", message)
        self.errors += 1
        self.last_error = message

    def _consumer(self) -> Consumer:
        return assigned_consumer(  # never joins or commits: assigned partitions only
            self._client_config,
            self._group_id,
            "lag-probe",
            **{
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",  # an offset deleted by retention: the first one left
                # One record per partition is all we need, not a prefetch of the log.
                "max.partition.fetch.bytes": 16 * 1024,
                "queued.min.messages": 1,
                "queued.max.messages.kbytes": 1024,
                "fetch.queue.backoff.ms": 5,
                "fetch.wait.max.ms": 10,
                "fetch.error.backoff.ms": 50,
            },
        )

    def _sweep(self, consumer: Consumer, keys: set[TimestampKey], deadline: float) -> None:
        todo: dict[tuple[str, int], list[int]] = defaultdict(list)
        for t, p, o in sorted(keys, reverse=True):
            todo[(t, p)].append(o)  # highest first, so pop() gives the lowest
        current = {tp: offsets.pop() for tp, offsets in todo.items()}
        consumer.incremental_assign([TopicPartition(t, p, o) for (t, p), o in current.items()])
        try:
            while current and time.monotonic() < deadline and not self._stop.is_set():
                read: dict[TimestampKey, float | None] = {}
                for msg in consumer.consume(num_messages=1000, timeout=_POLL_S):
                    tp = (msg.topic(), msg.partition())
                    offset = current.get(tp)
                    if offset is None or (*tp, offset) in read:
                        continue  # not ours, or already read (the rest of its batch)
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            read[(*tp, offset)] = None  # nothing there (any more): interpolate
                        continue
                    if msg.offset() < offset:
                        continue  # a record of an earlier offset of this partition, still queued
                    ts_type, ts_ms = msg.timestamp()
                    read[(*tp, offset)] = None if ts_type == TIMESTAMP_NOT_AVAILABLE else ts_ms / 1000.0
                if not read:
                    continue
                finished = [(t, p) for t, p, _ in read]
                for tp in finished:
                    del current[tp]
                consumer.incremental_unassign([TopicPartition(t, p) for t, p in finished])
                following = {tp: todo[tp].pop() for tp in finished if todo[tp]}
                if following:
                    consumer.incremental_assign([TopicPartition(t, p, o) for (t, p), o in following.items()])
                    current.update(following)
                with self._lock:
                    self._results.update(read)
                    self._inflight.difference_update(read)
                    self._lock.notify_all()
        finally:
            if current:
                consumer.incremental_unassign([TopicPartition(t, p) for t, p in current])
