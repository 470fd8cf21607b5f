"""Enricher workers against the real broker and Redis: sharing partitions, exact state, crashes, shutdown."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter, defaultdict

import pytest
import redis
from confluent_kafka import Consumer, TopicPartition
from test_generator_kafka import read_topic

from pipelines.events import CONTROL_TYPES, validate
from pipelines.produce import Generator
from pipelines.workers.enricher import EnricherStore, WorkerSettings
from pipelines.workers.pool import WorkerPool
from watchtower.config.models import GeneratorConfig, WorkersConfig

pytestmark = pytest.mark.integration

PARTITIONS = 6
# Low timeouts: against tansu the default ones make every join wait for minutes.
FAST_WORKERS = WorkersConfig(count=2, session_timeout=6.0, max_poll_interval=10.0)
FAULTS = GeneratorConfig(
    rate=50_000, users=300, duplicate_ratio=0.03, malformed_ratio=0.03, late_ratio=0.03, late_by=600
)


def expected_state(records: list[tuple[int, int, bytes]]) -> dict[str, dict[str, int]]:
    """What a correct enricher holds: each valid business event once, whatever the faults."""
    state: dict[str, Counter] = defaultdict(Counter)
    last: dict[str, int] = {}
    seen: set[str] = set()
    for _, _, value in sorted(records, key=lambda r: (r[0], r[1])):
        v = validate(value)
        if not v.ok or v.event["event_type"] in CONTROL_TYPES or v.event["event_id"] in seen:
            continue
        seen.add(v.event["event_id"])
        user = v.event["user_id"]
        state[user]["events"] += 1
        state[user]["amount_cents"] += round(v.event["amount"] * 100)
        state[user][f"type:{v.event['event_type']}"] += 1
        last[user] = max(last.get(user, 0), v.event_time_ms)
    return {u: {**c, "last_event_ms": last[u]} for u, c in state.items()}


def redis_state(client: redis.Redis, store: EnricherStore) -> dict[str, dict[str, int]]:
    out = {}
    prefix = store.user_key("")
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        doc = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
        doc.pop("last_event_time")
        out[key.decode()[len(prefix) :]] = {k: int(v) for k, v in doc.items()}
    return out


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """High watermarks through ListOffsets: exact here because every run ends with single-record markers."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        return {
            p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
            for p in range(PARTITIONS)
        }
    finally:
        c.close()


def committed(bootstrap: str, topic: str, group: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return {
            tp.partition: tp.offset
            for tp in c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
        }
    finally:
        c.close()


def wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def wait_caught_up(store: EnricherStore, ends: dict[int, int], timeout: float = 90.0) -> None:
    wait_for(
        lambda: store.applied_offsets(ends) == {p: e - 1 for p, e in ends.items()},
        timeout,
        "workers to apply every record",
    )


def owners_are(store: EnricherStore, workers: int):
    owners = store.owners()
    return owners if len(owners) == PARTITIONS and len(set(owners.values())) == workers else None


@pytest.fixture
def setup(bootstrap, redis_url, redis_client, topic_factory, group_factory):
    topic, group = topic_factory("orders", partitions=PARTITIONS), group_factory("enricher")
    settings = WorkerSettings(
        bootstrap=bootstrap, redis_url=redis_url, topic=topic, group=group, workers=FAST_WORKERS
    )
    store = EnricherStore(redis_client, group, topic)
    return settings, store


def generate(bootstrap: str, topic: str, count: int, cfg: GeneratorConfig = FAULTS) -> None:
    m = Generator(cfg, bootstrap, topic=topic).run(count=count)
    assert m.failed == 0 and m.delivered == m.sent


# Scale-down used to strand the survivor about half the time: tansu 0.6 keeps a departed group leader when
# the leader's LeaveGroup lands while the group is rebalancing, and the survivors then rejoin forever.
# WorkerPool now lets workers leave one at a time into a Stable group (docs/pipeline.md, "Scaling down").
def test_workers_share_partitions_rebalance_cooperatively_and_count_exactly(bootstrap, redis_client, setup):
    settings, store = setup
    generate(bootstrap, settings.topic, 20_000)
    with WorkerPool(settings) as pool:
        assert pool.size == 2
        two = wait_for(lambda: owners_are(store, 2), 60, "two workers to share the partitions")
        assert sorted(Counter(two.values()).values()) == [3, 3]
        wait_caught_up(store, end_offsets(bootstrap, settings.topic))

        pool.scale(3)  # cooperative-sticky: the newcomer takes some partitions, nobody else's move
        three = wait_for(lambda: owners_are(store, 3), 60, "three workers to share the partitions")
        kept = {p for p, name in three.items() if two.get(p) == name}
        assert len(kept) >= 4, (two, three)
        generate(bootstrap, settings.topic, 5_000)
        wait_caught_up(store, end_offsets(bootstrap, settings.topic))

        pool.scale(1)
        wait_for(lambda: owners_are(store, 1), 60, "one worker to own every partition")
        generate(bootstrap, settings.topic, 5_000)
        ends = end_offsets(bootstrap, settings.topic)
        wait_caught_up(store, ends)
    assert pool.size == 0 and pool.restarts == 0

    assert redis_state(redis_client, store) == expected_state(
        read_topic(bootstrap, settings.topic, PARTITIONS)
    )
    stats = store.stats()
    assert stats["duplicate"] > 0 and sum(v for k, v in stats.items() if k.startswith("invalid:")) > 0
    assert stats["control"] == 3 * PARTITIONS  # three runs' markers, skipped
    # A clean stop commits everything it applied.
    assert committed(bootstrap, settings.topic, settings.group) == ends


def test_sigkill_mid_stream_then_restart_never_double_counts(bootstrap, redis_client, setup):
    settings, store = setup
    gen_cfg = FAULTS.model_copy(update={"rate": 4000.0})
    done = threading.Event()
    producer_thread = threading.Thread(
        target=lambda: (Generator(gen_cfg, bootstrap, topic=settings.topic).run(duration=12.0), done.set())
    )
    with WorkerPool(settings, restart_delay=0.5) as pool:
        wait_for(lambda: owners_are(store, 2), 60, "two workers to share the partitions")
        producer_thread.start()
        time.sleep(3.0)
        victim = pool.pids()[0]
        os.kill(victim, signal.SIGKILL)  # mid-batch, mid-commit: wherever it is
        wait_for(
            lambda: pool.restarts == 1 and victim not in pool.pids(),
            10,
            "the pool to restart the killed worker",
        )
        time.sleep(2.0)
        os.kill(pool.pids()[1], signal.SIGKILL)
        wait_for(lambda: pool.restarts == 2, 10, "the pool to restart the second killed worker")
        producer_thread.join(60)
        assert done.is_set()
        ends = end_offsets(bootstrap, settings.topic)
        wait_caught_up(store, ends, timeout=120)
    assert redis_state(redis_client, store) == expected_state(
        read_topic(bootstrap, settings.topic, PARTITIONS)
    )
    assert committed(bootstrap, settings.topic, settings.group) == ends


def test_reapplying_a_batch_changes_nothing(bootstrap, redis_client, setup):
    """A crash between the Redis write and the Kafka commit redelivers the batch: it must be a no-op."""
    settings, store = setup
    generate(bootstrap, settings.topic, 3_000)
    records = read_topic(bootstrap, settings.topic, PARTITIONS)
    first = store.apply(records)
    before = redis_state(redis_client, store)
    again = store.apply(records)
    assert first.applied_events > 0 and again.applied_events == 0
    assert again.stats["replayed"] == len(records)
    assert redis_state(redis_client, store) == before == expected_state(records)


class _RacedStore(EnricherStore):
    """A store that lets `rival` apply the same batch between its WATCH and its MULTI, once."""

    def __init__(self, *args, rival: EnricherStore, records, **kw):
        super().__init__(*args, **kw)
        self.rival, self.records, self.raced = rival, records, False

    def _last_event_ms(self, users):
        if not self.raced:
            self.raced = True
            self.rival.apply(self.records)
        return super()._last_event_ms(users)


def test_two_owners_of_a_partition_at_once_still_count_once(bootstrap, redis_client, setup):
    """A worker that lost its partitions (session timeout) while still applying a batch: the WATCH on
    the applied offsets makes its write fail, and its re-plan finds nothing left to apply."""
    settings, store = setup
    generate(bootstrap, settings.topic, 3_000)
    records = read_topic(bootstrap, settings.topic, PARTITIONS)
    raced = _RacedStore(redis_client, settings.group, settings.topic, rival=store, records=records)
    plan = raced.apply(records)
    assert raced.raced and plan.applied_events == 0 and plan.stats["replayed"] == len(records)
    assert redis_state(redis_client, store) == expected_state(records)
