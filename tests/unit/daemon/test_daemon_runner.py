"""The scheduler loop: isolation of failures, state changes logged once, spans per cycle."""

from __future__ import annotations

import logging
import threading

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from scripted import ScriptedCollector

from watchtower.core.history import History
from watchtower.daemon.runner import CollectorRunner


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def runner_for(*collectors: ScriptedCollector, spans: InMemorySpanExporter) -> CollectorRunner:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return CollectorRunner(collectors, History(10), provider.get_tracer("test"), clock=lambda: 100.0)


def test_failure_marks_down_logs_once_counts_and_recovers(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    c = ScriptedCollector("c")
    r = runner_for(c, spans=spans)
    caplog.set_level(logging.INFO, logger="watchtower.daemon.runner")
    assert r.run_once("c")
    c.fail_with = ConnectionError("broker gone")
    for _ in range(3):
        assert not r.run_once("c")
    h = r.health()["c"]
    assert (h.up, h.errors, h.cycles) == (False, 3, 4)
    assert h.last_error == "ConnectionError: broker gone"
    assert "c" not in r.history.snapshot().readings  # stale values are not served
    c.fail_with = None
    assert r.run_once("c")
    assert r.health()["c"].up is True and r.health()["c"].errors == 3
    messages = [rec.getMessage() for rec in caplog.records]
    assert messages == ["collector up", "collector down", "collector up"]  # once per change, not per cycle
    assert sum(r.health()["c"].bucket_counts) == 5


def test_a_span_per_cycle_with_outcome(spans: InMemorySpanExporter) -> None:
    c = ScriptedCollector("c")
    r = runner_for(c, spans=spans)
    r.run_once("c")
    c.fail_with = RuntimeError("boom")
    r.run_once("c")
    ok, failed = spans.get_finished_spans()
    assert ok.name == "watchtower.collect"
    assert ok.attributes["watchtower.collector"] == "c" and ok.attributes["watchtower.outcome"] == "ok"
    assert ok.attributes["watchtower.duration_seconds"] >= 0
    assert failed.attributes["watchtower.outcome"] == "error"
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.events[0].name == "exception"


def test_a_hanging_collector_does_not_delay_the_others(spans: InMemorySpanExporter) -> None:
    slow, fast = ScriptedCollector("slow", interval=0.05), ScriptedCollector("fast", interval=0.05)
    slow.gate = threading.Event()  # blocks its first cycle until released
    r = runner_for(slow, fast, spans=spans)
    r.start()
    try:
        assert fast.wait_calls(5), "the fast collector should keep its schedule"
        assert slow.calls == 0
        assert r.health()["slow"].overruns >= 1  # skipped runs are counted, not queued
    finally:
        slow.gate.set()
        r.stop()
    assert slow.wait_calls(1)
    assert slow.closed and fast.closed


def test_a_successful_reading_is_announced_a_failed_one_is_not(spans: InMemorySpanExporter) -> None:
    from watchtower.core.signal import ReadingSignal

    c = ScriptedCollector("c")
    signal = ReadingSignal()
    provider = TracerProvider()
    r = CollectorRunner([c], History(10), provider.get_tracer("test"), clock=lambda: 100.0, readings=signal)
    assert r.run_once("c")
    assert signal.take() == {"c": 100.0}
    c.fail_with = ConnectionError("down")
    assert not r.run_once("c")
    assert signal.take() == {}


def test_an_enabled_interval_policy_follows_the_cost_and_reschedules(spans: InMemorySpanExporter) -> None:
    """A cheap collector configured at 2 s is rescheduled to the policy's floor and runs that often."""
    from watchtower.collectors.interval_policy import IntervalPolicyConfig

    c = ScriptedCollector("c", interval=2.0)
    c.interval_policy = IntervalPolicyConfig(enabled=True, min_interval=0.05, max_interval=2.0)  # type: ignore[attr-defined]
    plain = ScriptedCollector("plain", interval=2.0)
    r = runner_for(c, plain, spans=spans)
    assert r.health()["c"].interval == 2.0
    r.start()
    try:
        assert c.wait_calls(10, timeout=10), "the cheap collector was not rescheduled to its fast interval"
    finally:
        r.stop()
    assert r.health()["c"].interval == pytest.approx(0.05)
    assert r.health()["plain"].interval == 2.0  # no policy: untouched
    assert plain.calls <= 2


def test_a_fast_interval_policy_with_a_short_history_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from watchtower.collectors.interval_policy import IntervalPolicyConfig

    c = ScriptedCollector("lag", interval=1.0)
    c.interval_policy = IntervalPolicyConfig(enabled=True, min_interval=0.25)  # type: ignore[attr-defined]
    caplog.set_level(logging.WARNING, logger="watchtower.daemon.runner")
    CollectorRunner([c], History(360))
    assert any("daemon.history_size to at least 1200" in r.getMessage() for r in caplog.records)
    caplog.clear()
    CollectorRunner([c], History(1200))
    assert not caplog.records
