"""Lag in seconds from the first reading, and paging on it as fast as on lag in messages (real broker,
real Redis, the daemon in-process with reading-driven evaluation).

A group stopped on records stamped five minutes ago must not read 0 s (the healthiest value) while the
record at its committed offset has not been read: its first reading carries the record's age, and a
`lag seconds > 30 s` rule pages in the same evaluation as the messages rule.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from kafka_support import commit_offsets

from watchtower.alerting.store import AlertStore
from watchtower.collectors.kafka_lag.collector import KafkaLagCollector
from watchtower.collectors.kafka_lag.config import KafkaLagConfig
from watchtower.core.history import History
from watchtower.daemon.config import DaemonConfig
from watchtower.daemon.daemon import Daemon
from watchtower.daemon.evaluation import AlertEvaluator
from watchtower.notify.dispatcher import Dispatcher
from watchtower.notify.memory import MemoryNotifier
from watchtower.rules.config import load_rules

pytestmark = pytest.mark.integration

AGE = 300.0


class TimedMemory(MemoryNotifier):
    """The in-memory notifier, noting when each notification arrived."""

    def __init__(self) -> None:
        super().__init__("mem")
        self.arrived: dict[str, float] = {}  # rule -> first arrival

    def send(self, notification, thread_ref, attempt=1):  # type: ignore[no-untyped-def]
        for a in notification.alerts:
            self.arrived.setdefault(a.rule, time.time())
        return super().send(notification, thread_ref, attempt)


def rules(path: Path, group: str) -> Path:
    path.write_text(
        f"""
routes:
  default: {{group_by: [rule, group], group_wait: 0s, group_interval: 0s}}
rules:
  - name: lag-messages
    kind: threshold
    selector: watchtower_consumer_lag_messages{{group="{group}"}}
    aggregate: max
    by: [group]
    bound: 3
    severity: page
  - name: lag-seconds
    kind: threshold
    selector: watchtower_consumer_lag_seconds{{group="{group}"}}
    aggregate: max
    by: [group]
    bound: 30
    severity: page
"""
    )
    return path


def test_a_group_stopped_on_old_records_reads_their_age_at_once_and_pages_with_the_messages_rule(
    bootstrap: str, redis_url: str, topic_factory, group_factory, tmp_path: Path
) -> None:
    import redis

    topic, group = topic_factory("old"), group_factory("old")
    stamped = time.time() - AGE
    p = Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1, "linger.ms": 0})
    for i in range(5):
        p.produce(topic, value=str(i).encode(), partition=0, timestamp=int(stamped * 1000))
    assert p.flush(15) == 0
    commit_offsets(bootstrap, group, {(topic, 0): 0})  # stopped before the first record: lag 5

    history = History(100)
    interval = 1.0
    collector = KafkaLagCollector(
        KafkaLagConfig(groups_allow=[group], interval=interval, timeout=3), {"bootstrap.servers": bootstrap}
    )
    store = AlertStore(
        redis.Redis.from_url(redis_url), prefix=f"wt-ls-{uuid.uuid4().hex[:8]}:", sinks=("mem",)
    )
    mem = TimedMemory()
    evaluator = AlertEvaluator(
        load_rules(rules(tmp_path / "rules.yaml", group)),
        history,
        store,
        Dispatcher(store, {"mem": mem}),
        interval=interval,
        startup_grace=0,
    )
    daemon = Daemon(
        [collector], DaemonConfig.model_validate({"http": {"port": 0}}), history=history, alerting=evaluator
    )
    daemon.start()
    try:
        pause = threading.Event()
        deadline = time.monotonic() + 30
        first = None
        while first is None:
            assert time.monotonic() < deadline, "the group never showed up"
            for r in history.readings("kafka_lag"):
                if r.values("watchtower_consumer_lag_messages"):
                    first = r
                    break
            pause.wait(0.05)
        lbl = (("group", group), ("partition", "0"), ("topic", topic))
        assert first.values("watchtower_consumer_lag_messages")[lbl] == 5.0
        # The first reading that shows the group carries the records' age, not 0 and not nothing.
        seconds = first.values("watchtower_consumer_lag_seconds").get(lbl)
        assert seconds == pytest.approx(first.at - stamped, abs=interval), first.detail["lag_seconds_methods"]
        # Every reading: never a 0 for this lagging partition.
        while len(mem.arrived) < 2:
            assert time.monotonic() < deadline, f"pages so far: {mem.arrived}"
            pause.wait(0.05)
        for r in history.readings("kafka_lag"):
            assert r.values("watchtower_consumer_lag_seconds").get(lbl, AGE) >= AGE - 1
        # The seconds rule pages within the same bound as the messages rule (here: the same evaluation).
        assert abs(mem.arrived["lag-seconds"] - mem.arrived["lag-messages"]) < interval
    finally:
        daemon.stop()
