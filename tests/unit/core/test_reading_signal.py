"""ReadingSignal: publish never blocks, a burst is one batch, a waiter wakes at once."""

from __future__ import annotations

import threading
import time

from watchtower.core.signal import ReadingSignal


def test_a_burst_coalesces_into_one_batch_with_the_newest_time() -> None:
    s = ReadingSignal()
    for at in (1.0, 3.0, 2.0):
        s.publish("kafka_lag", at)
    s.publish("dlq", 5.0)
    assert s.take() == {"kafka_lag": 3.0, "dlq": 5.0}
    assert s.take() == {}
    assert s.published == 4


def test_wait_times_out_empty_and_returns_what_was_published() -> None:
    s = ReadingSignal()
    assert s.wait(0.01) == {}
    s.publish("kafka_lag", 1.0)
    assert s.wait(10.0) == {"kafka_lag": 1.0}  # already there: no wait


def test_a_waiter_wakes_when_a_reading_is_published() -> None:
    s = ReadingSignal()
    got: list[dict[str, float]] = []
    t = threading.Thread(target=lambda: got.append(s.wait(30.0)))
    t.start()
    deadline = time.monotonic() + 10
    while t.is_alive() and time.monotonic() < deadline:
        s.publish("kafka_lag", 7.0)
        t.join(0.05)
    assert not t.is_alive(), "the waiter did not wake on publish"
    assert got and got[0].get("kafka_lag") == 7.0
