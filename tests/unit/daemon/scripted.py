"""A collector that does what the test tells it: the runner's test double, a real Collector plugin."""

from __future__ import annotations

import threading
from collections.abc import Callable

from watchtower.core.types import Kind, MetricSpec, Reading, Sample, labels

SPECS = (
    MetricSpec("test_value", Kind.GAUGE, "A value.", ("partition",)),
    MetricSpec("test_events_total", Kind.COUNTER, "A count."),
)


class ScriptedCollector:
    specs = SPECS

    def __init__(
        self, name: str, interval: float = 0.05, script: Callable[[float, int], Reading] | None = None
    ):
        self.name = name
        self.interval = interval
        self.calls = 0
        self.fail_with: Exception | None = None
        self.gate: threading.Event | None = None  # when set, collect() blocks until the gate opens
        self.partitions = [0, 1]
        self.closed = False
        self.cycled = threading.Condition()

    def collect(self, now: float) -> Reading:
        if self.gate is not None:
            self.gate.wait(10)
        with self.cycled:
            self.calls += 1
            self.cycled.notify_all()
        if self.fail_with is not None:
            raise self.fail_with
        samples = tuple(
            Sample("test_value", labels(partition=p), float(p + self.calls)) for p in self.partitions
        )
        return Reading(
            self.name,
            now,
            (*samples, Sample("test_events_total", (), float(self.calls))),
            {"calls": self.calls},
        )

    def wait_calls(self, n: int, timeout: float = 10.0) -> bool:
        with self.cycled:
            return self.cycled.wait_for(lambda: self.calls >= n, timeout)

    def close(self) -> None:
        self.closed = True
