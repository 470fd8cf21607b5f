"""Lag in seconds from record timestamps, read by the background probe, against the real broker."""

from __future__ import annotations

import time

import pytest
from lag_helpers import await_condition, commit, lag_collector, produce, value

pytestmark = pytest.mark.integration


def _cycle_with_timestamps(c, group: str, topic: str, partitions: int = 1, at_offset: int | None = None):
    """Collect until every lagging partition got its lag in seconds from a record timestamp (and, with
    `at_offset`, until `group` is seen at that committed offset)."""

    def check():
        r = c.collect(time.time())
        methods = r.detail["lag_seconds_methods"]
        if methods.get("timestamp") != partitions or "interpolation" in methods:
            return None
        seen = value(r, "watchtower_consumer_committed_offset", group=group, topic=topic, partition=0)
        return r if at_offset is None or seen == at_offset else None

    return await_condition(check, 10, f"timestamps for {group}", interval=0.05)


def test_lag_in_messages_does_not_wait_for_the_timestamp_probe(
    bootstrap: str, topic_factory, group_factory
) -> None:
    topic, group = topic_factory("nowait"), group_factory("nowait")
    written = time.time() - 300
    produce(bootstrap, topic, {0: 4}, timestamp_ms=int(written * 1000))
    commit(bootstrap, group, {(topic, 0): 1})
    c = lag_collector(bootstrap, group, timestamp_wait=0, first_timestamp_wait=0)
    try:
        first = c.collect(time.time())
        # Exact lag in messages at once; no lag in seconds (never a 0) while the probe reads the record.
        assert value(first, "watchtower_consumer_lag_messages", group=group, topic=topic, partition=0) == 3.0
        assert value(first, "watchtower_consumer_lag_seconds", group=group, topic=topic, partition=0) is None
        assert first.detail["lag_seconds_methods"] == {"pending": 1}
        assert first.detail["timings"]["timestamps"] < 0.5
        now = time.time()
        later = _cycle_with_timestamps(c, group, topic)
        seconds = value(later, "watchtower_consumer_lag_seconds", group=group, topic=topic, partition=0)
        assert seconds == pytest.approx(later.at - written, abs=0.01)
        assert later.at >= now
    finally:
        c.close()


def test_every_new_committed_offset_of_a_partition_is_read_again(
    bootstrap: str, topic_factory, group_factory
) -> None:
    """A partition probed once is probed again at the group's next offset, and at two groups' offsets.

    (librdkafka keeps a pause across unassign/assign; the probe used to pause a partition once it had its
    record, so every later probe of that partition timed out and fell back to interpolation.)
    """
    topic, prefix = topic_factory("again"), group_factory("again")
    base = time.time() - 1000
    for i in range(8):  # record i written at base + 10 i
        produce(bootstrap, topic, {0: 1}, timestamp_ms=int((base + 10 * i) * 1000))
    a, b = f"{prefix}-a", f"{prefix}-b"
    commit(bootstrap, a, {(topic, 0): 1})
    commit(bootstrap, b, {(topic, 0): 5})
    c = lag_collector(bootstrap, f"{prefix}-.*")
    try:
        r = _cycle_with_timestamps(c, a, topic, partitions=2)
        ages = {
            g: value(r, "watchtower_consumer_lag_seconds", group=g, topic=topic, partition=0) for g in (a, b)
        }
        assert ages == {
            a: pytest.approx(r.at - (base + 10), abs=0.01),
            b: pytest.approx(r.at - (base + 50), abs=0.01),
        }
        for offset in (3, 6):  # the group moves on: the same partition, read at a new offset
            commit(bootstrap, a, {(topic, 0): offset})
            r = _cycle_with_timestamps(c, a, topic, partitions=2, at_offset=offset)
            seconds = value(r, "watchtower_consumer_lag_seconds", group=a, topic=topic, partition=0)
            assert seconds == pytest.approx(r.at - (base + 10 * offset), abs=0.01)
        assert r.detail["timestamp_probe"]["errors"] == 0
    finally:
        c.close()
