"""ensure_topics and the client factories against the real (embedded) broker."""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition
from kafka_support import unique

from watchtower.config import KafkaConfig
from watchtower.kafka import KafkaClientError, admin, consumer, ensure_topics, producer, topic_partitions

pytestmark = pytest.mark.integration

CFG = KafkaConfig()


def test_ensure_topics_creates_then_reports_existing(bootstrap):
    a, b = unique("ens-a"), unique("ens-b")
    with admin(CFG, bootstrap) as client:
        assert ensure_topics(client, {a: 6, b: 3}) == {a: "created", b: "created"}
        assert ensure_topics(client, {a: 6, b: 3}) == {a: "exists", b: "exists"}
        listed = topic_partitions(client)
    assert (listed[a], listed[b]) == (6, 3)


def test_more_partitions_than_asked_is_fine(bootstrap, topic_factory):
    topic = topic_factory("ens-more", partitions=4)
    with admin(CFG, bootstrap) as client:
        assert ensure_topics(client, {topic: 2}) == {topic: "exists"}


def test_too_few_partitions_names_the_fix(bootstrap, topic_factory):
    topic = topic_factory("ens-few", partitions=1)
    with admin(CFG, bootstrap) as client, pytest.raises(KafkaClientError) as info:
        ensure_topics(client, {topic: 3})
    assert info.value.code == "TOO_FEW_PARTITIONS"
    assert f"--alter --topic {topic} --partitions 3" in info.value.description
    assert "configure 1 partitions" in info.value.description


def test_reference_producer_round_trip(bootstrap, topic_factory, group_factory):
    """The reference settings (idempotent, acks=all, lz4) work against tansu; a consumer reads them back."""
    topic = topic_factory("ref")
    p = producer(CFG, bootstrap)
    for i in range(50):
        p.produce(topic, key=str(i).encode(), value=b"x" * 100)
    assert p.flush(15) == 0
    c = consumer(CFG, bootstrap, group_factory("ref"))
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        msgs = c.consume(num_messages=50, timeout=10)
        while len(msgs) < 50:
            more = c.consume(num_messages=50 - len(msgs), timeout=5)
            if not more:
                break
            msgs += more
    finally:
        c.close()
    assert [m.key() for m in msgs if m.error() is None] == [str(i).encode() for i in range(50)]


def test_metadata_error_is_wrapped():
    with admin(CFG, "127.0.0.1:1") as client, pytest.raises(KafkaClientError) as info:
        topic_partitions(client, timeout=0.5)
    assert info.value.code in ("_TRANSPORT", "_TIMED_OUT")
    assert "cannot read cluster metadata" in str(info.value)
