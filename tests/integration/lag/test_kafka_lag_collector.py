"""The Kafka lag collector against the real (embedded) broker."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka_support import FAST_GROUP
from lag_helpers import await_condition, commit, lag_collector, produce, value

pytestmark = pytest.mark.integration


def test_known_committed_offsets_give_the_exact_lag(bootstrap: str, topic_factory, group_factory) -> None:
    topic, group = topic_factory("lag", partitions=3), group_factory("exact")
    produce(bootstrap, topic, {0: 10, 1: 7, 2: 3})
    commit(bootstrap, group, {(topic, 0): 4, (topic, 1): 7, (topic, 2): 0})
    c = lag_collector(bootstrap, group)
    try:
        r = c.collect(time.time())
    finally:
        c.close()
    lag = {
        p: value(r, "watchtower_consumer_lag_messages", group=group, topic=topic, partition=p)
        for p in range(3)
    }
    assert lag == {0: 6.0, 1: 0.0, 2: 3.0}
    assert value(r, "watchtower_consumer_committed_offset", group=group, topic=topic, partition=0) == 4.0
    assert value(r, "watchtower_topic_partition_high_watermark", topic=topic, partition=0) == 10.0
    assert value(r, "watchtower_consumer_group_lag_messages", group=group, topic=topic) == 9.0
    assert value(r, "watchtower_consumer_lag_seconds", group=group, topic=topic, partition=1) == 0.0
    assert r.detail["groups"][group]["state"] == "empty"
    assert value(r, "watchtower_lag_inconsistencies_total") == 0.0


def test_lag_seconds_come_from_the_record_at_the_committed_offset(
    bootstrap: str, topic_factory, group_factory
) -> None:
    topic, group = topic_factory("age"), group_factory("age")
    written = time.time() - 120  # records written "two minutes ago" (explicit create time)
    produce(bootstrap, topic, {0: 5}, timestamp_ms=int(written * 1000))
    commit(bootstrap, group, {(topic, 0): 2})
    # The probe reads on its own thread; waiting for it makes the first cycle's value the record's.
    c = lag_collector(bootstrap, group, lag_seconds_method="timestamp", timestamp_wait=3)
    try:
        now = time.time()
        r = c.collect(now)
        assert value(
            r, "watchtower_consumer_lag_seconds", group=group, topic=topic, partition=0
        ) == pytest.approx(now - written, abs=0.01)
        assert r.detail["lag_seconds_methods"] == {"timestamp": 1}
        r = c.collect(now + 1)
        assert value(r, "watchtower_lag_timestamp_fetches_total") == 1.0  # second cycle: cache hit
    finally:
        c.close()


def test_a_stopped_consumers_lag_in_seconds_grows_with_wall_time(
    bootstrap: str, topic_factory, group_factory
) -> None:
    topic, group = topic_factory("stopped"), group_factory("stopped")
    produce(bootstrap, topic, {0: 5})
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **FAST_GROUP,
        }
    )
    consumer.subscribe([topic])
    got = []
    await_condition(
        lambda: (
            (m := consumer.poll(0.2)) is not None
            and not m.error()
            and got.append(m) is None
            and len(got) >= 3
        ),
        30,
        "3 records",
    )
    consumer.commit(message=got[-1], asynchronous=False)  # committed offset 3 of 5
    consumer.close()  # the consumer stops; two records wait
    c = lag_collector(bootstrap, group, timestamp_wait=3)  # first cycle from the record, not interpolated
    try:
        first = value(
            c.collect(time.time()), "watchtower_consumer_lag_seconds", group=group, topic=topic, partition=0
        )
        assert first is not None and first > 0

        def grown() -> float | None:
            v = value(
                c.collect(time.time()),
                "watchtower_consumer_lag_seconds",
                group=group,
                topic=topic,
                partition=0,
            )
            return v if v is not None and v >= first + 1.0 else None

        started = time.monotonic()
        later = await_condition(grown, 10, "lag in seconds to grow by 1 s", interval=0.25)
        waited = time.monotonic() - started
        assert later - first == pytest.approx(waited, abs=0.5)  # grows one second per second
    finally:
        c.close()


def test_live_group_state_and_gone_topic_drops_its_series(
    bootstrap: str, topic_factory, group_factory
) -> None:
    keep, doomed, group = topic_factory("keep"), topic_factory("doomed"), group_factory("live")
    produce(bootstrap, keep, {0: 2})
    produce(bootstrap, doomed, {0: 2})
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **FAST_GROUP,
        }
    )
    consumer.subscribe([keep])
    # Timestamps read before the topic is deleted: librdkafka 2.16 crashes (SIGSEGV) when a topic is
    # deleted under a consumer fetching from it, and the probe's sweep would otherwise still be running
    # (see watchtower/collectors/kafka_lag/probe.py).
    c = lag_collector(bootstrap, group, timestamp_wait=3)
    try:
        await_condition(
            lambda: consumer.poll(0.2) is not None or consumer.assignment(), 30, "the consumer to join"
        )
        consumer.commit(
            offsets=[TopicPartition(keep, 0, 1), TopicPartition(doomed, 0, 1)], asynchronous=False
        )
        r = c.collect(time.time())
        assert r.detail["groups"][group]["state"] == "stable"
        assert value(r, "watchtower_consumer_lag_messages", group=group, topic=doomed, partition=0) == 1.0
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for fut in admin.delete_topics([doomed], operation_timeout=10).values():
            fut.result(15)

        def without_doomed():
            reading = c.collect(time.time())
            return reading if all(dict(s.labels).get("topic") != doomed for s in reading.samples) else None

        r = await_condition(without_doomed, 15, "the deleted topic's series to go")
        assert value(r, "watchtower_consumer_lag_messages", group=group, topic=keep, partition=0) == 1.0
    finally:
        consumer.close()
        c.close()


def test_a_group_starting_on_a_new_topic_is_found_at_the_next_full_refresh(
    bootstrap: str, topic_factory, group_factory
) -> None:
    first, second, group = topic_factory("first"), topic_factory("second"), group_factory("refresh")
    produce(bootstrap, first, {0: 3})
    produce(bootstrap, second, {0: 3})
    commit(bootstrap, group, {(first, 0): 1})
    c = lag_collector(bootstrap, group, group_topics_refresh=3600)
    try:
        c.collect(time.time())
        commit(bootstrap, group, {(first, 0): 2, (second, 0): 1})
        r = c.collect(
            time.time()
        )  # explicit fetch of the known topic: the moved offset is seen, the new topic not yet
        assert value(r, "watchtower_consumer_committed_offset", group=group, topic=first, partition=0) == 2.0
        assert value(r, "watchtower_consumer_lag_messages", group=group, topic=second, partition=0) is None
        c.config = c.config.model_copy(update={"group_topics_refresh": 0.0})
        r = c.collect(time.time())
        assert value(r, "watchtower_consumer_lag_messages", group=group, topic=second, partition=0) == 2.0
    finally:
        c.close()


def test_a_lag_in_seconds_older_than_the_offset_table_says_it_is_a_lower_bound(
    bootstrap: str, topic_factory, group_factory
) -> None:
    """With interpolation only, a group that shows up stopped on records older than the daemon's offset
    table has no exact age: its first reading exports the lower bound and counts it as one."""
    topic, prefix = topic_factory("bound", partitions=2), group_factory("bound")
    produce(bootstrap, topic, {0: 5, 1: 5}, timestamp_ms=int((time.time() - 300) * 1000))
    live, stopped = f"{prefix}-live", f"{prefix}-stopped"
    commit(bootstrap, live, {(topic, 0): 5, (topic, 1): 5})  # caught up: the tables begin with it
    c = lag_collector(bootstrap, f"{prefix}-.*", lag_seconds_method="interpolation")
    bounds = "watchtower_consumer_lag_seconds_lower_bounds"
    try:
        first = c.collect(time.time())
        assert value(first, bounds, group=live, topic=topic) == 0  # nothing waiting: exact
        commit(bootstrap, stopped, {(topic, 0): 1, (topic, 1): 2})

        def showing_the_stopped_group():
            r = c.collect(time.time())
            return (
                r
                if value(r, "watchtower_consumer_lag_messages", group=stopped, topic=topic, partition=0)
                else None
            )

        r = await_condition(showing_the_stopped_group, 15, "the stopped group's first reading")
    finally:
        c.close()
    assert value(r, bounds, group=stopped, topic=topic) == 2
    assert value(r, bounds, group=live, topic=topic) == 0
    for p in (0, 1):  # the bound: at least as old as the table's first observation
        seconds = value(r, "watchtower_consumer_lag_seconds", group=stopped, topic=topic, partition=p)
        assert seconds == pytest.approx(r.at - first.at, abs=0.01)
        assert seconds > 0
