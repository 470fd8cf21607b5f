"""The DLQ collector against the Spark job's own DLQ writers: DlqProducer (topic + headers) and DeltaSinks."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from collector_helpers import raw_rows
from deltalake import DeltaTable

from pipelines.spark.delta_sinks import DeltaSinks
from pipelines.spark.kafka_dlq import DlqProducer
from pipelines.spark.processing import dlq_rows
from watchtower.collectors.dlq import DlqCollector, DlqConfig, DlqUnavailable
from watchtower.core.types import labels

pytestmark = pytest.mark.integration


@pytest.fixture
def delta_root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="wt-dlq-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def dead_letters(n: int, reason: str | list[str], batch_id: int, partition: int = 0):
    return dlq_rows(
        raw_rows([b"{oops"] * n, first_offset=batch_id * 100, partition=partition), batch_id, reason
    )


def by_reason(reading) -> dict[str, float]:
    return {dict(k)["reason"]: v for k, v in reading.values("watchtower_dlq_rows").items()}


def test_delta_rows_by_reason_are_kept_incrementally(delta_root: Path) -> None:
    sinks = DeltaSinks(delta_root, "dlq-test").open()
    sinks.append("dlq", dead_letters(3, "bad_json", 0), 0)  # one reason: counted from the log's stats
    c = DlqCollector(DlqConfig(), {}, topic="", table_path=sinks.path("dlq"))
    r = c.collect(1000.0)
    assert by_reason(r) == {"bad_json": 3}
    assert r.detail["table"]["files_read"] == 0 and r.detail["table"]["files_from_stats"] == 1

    sinks.append("dlq", dead_letters(4, ["empty", "empty", "bad_json", "missing_field:user_id"], 1), 1)
    r = c.collect(1010.0)
    assert by_reason(r) == {"bad_json": 4, "empty": 2, "missing_field:user_id": 1}
    assert r.detail["table"]["files_read"] == 1  # only the new, mixed file was read

    assert c.collect(1020.0).detail["table"]["files_read"] == 1  # no new version: nothing read

    DeltaTable(sinks.path("dlq")).optimize.compact()  # rewrites the files: old ones are removed
    r = c.collect(1030.0)
    assert by_reason(r) == {"bad_json": 4, "empty": 2, "missing_field:user_id": 1}
    assert r.detail["table"]["rows"] == 7


def test_a_missing_table_is_reported_as_absent_not_as_an_error(delta_root: Path) -> None:
    c = DlqCollector(DlqConfig(), {}, topic="", table_path=str(delta_root / "nothing"))
    r = c.collect(1.0)
    assert r.samples == () and r.detail["table"]["exists"] is False


def test_topic_size_growth_and_header_reasons(bootstrap: str, topic_factory) -> None:
    topic = topic_factory("dlq", 2)
    producer = DlqProducer({"bootstrap.servers": bootstrap}, topic)
    producer.send(dead_letters(5, "bad_json", 0, partition=0))  # before the collector starts: not in headers
    c = DlqCollector(DlqConfig(timeout=5), {"bootstrap.servers": bootstrap}, topic, table_path=None)
    tl = labels(topic=topic)
    try:
        r = c.collect(1000.0)
        assert r.values("watchtower_dlq_messages") == {tl: 5.0}
        assert r.values("watchtower_dlq_growth_per_minute") == {}  # one point: no rate yet
        assert r.values("watchtower_dlq_topic_records_total") == {}

        producer.send(dead_letters(4, "empty", 1, partition=1))
        producer.send(dead_letters(2, "bad_json", 2, partition=0))
        r = c.collect(1030.0)
        # Multi-record batches: ListOffsets on tansu under-reports, the fetch's watermark corrects it.
        assert r.values("watchtower_dlq_messages") == {tl: 11.0}
        assert r.values("watchtower_dlq_growth_per_minute") == {tl: pytest.approx(12.0)}
        assert r.values("watchtower_dlq_topic_records_total") == {
            labels(topic=topic, reason="empty"): 4.0,
            labels(topic=topic, reason="bad_json"): 2.0,
        }
        r = c.collect(1060.0)  # nothing new: read nothing, growth over the window
        assert r.detail["topic"]["read"] == 0
        assert r.values("watchtower_dlq_growth_per_minute") == {tl: pytest.approx(6.0)}
    finally:
        producer.close()
        c.close()


def test_kafka_down_raises(bootstrap: str) -> None:
    c = DlqCollector(
        DlqConfig(timeout=0.5), {"bootstrap.servers": "127.0.0.1:1"}, "orders.dlq", table_path=None
    )
    try:
        with pytest.raises(DlqUnavailable):
            c.collect(1.0)
    finally:
        c.close()
