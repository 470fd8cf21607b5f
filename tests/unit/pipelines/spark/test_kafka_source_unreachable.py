"""The Kafka source rides out a broker that does not answer: empty triggers, then a failure after
fetchTimeoutMs. A reader subclass stands in for ListOffsets, a fixed clock for time (no broker, no Spark)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from pyspark.sql.datasource import ReadAllAvailable

from pipelines.spark.kafka_source import KafkaStreamReader


class Reader(KafkaStreamReader):
    def __init__(self, answers: list):
        super().__init__({"kafka.bootstrap.servers": "x:1", "subscribe": "t", "fetchTimeoutMs": "5000"})
        self.answers = answers

    def _list_offsets(self, which: str) -> dict[int, int]:
        answer = self.answers.pop(0)
        if answer is None:
            raise KafkaException(
                KafkaError(KafkaError._TIMED_OUT, "Failed to get metadata: Local: Timed out")
            )
        return answer


@pytest.fixture
def clock() -> list[float]:
    return [0.0]


START = {"t": {"0": 5}}


def test_an_unanswered_list_offsets_is_an_empty_trigger(clock) -> None:
    r = Reader([None, None, {0: 9}])
    r.clock = lambda: clock[0]
    assert r.latestOffset(START, ReadAllAvailable()) == START
    clock[0] = 4.0
    assert r.latestOffset(START, ReadAllAvailable()) == START
    clock[0] = 6.0
    assert r.latestOffset(START, ReadAllAvailable()) == {"t": {"0": 9}}  # back: the timer resets


def test_a_broker_away_longer_than_the_fetch_timeout_fails_the_query(clock) -> None:
    r = Reader([None, None])
    r.clock = lambda: clock[0]
    assert r.latestOffset(START, ReadAllAvailable()) == START
    clock[0] = 5.1
    with pytest.raises(KafkaException):
        r.latestOffset(START, ReadAllAvailable())
