"""Bounded in-memory history of readings: what rule evaluation reads.

Each collector has a ring buffer of its last `size` successful readings; `snapshot()` is the merged
latest view. Everything handed out is immutable (frozen Readings in tuples, read-only mappings), so
readers never hold a lock and never see a half-written cycle.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from watchtower.core.types import Labels, Reading


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The latest reading of every collector that has produced one, as of `at`."""

    at: float
    readings: Mapping[str, Reading]

    def value(self, collector: str, metric: str, labels: Labels = ()) -> float | None:
        reading = self.readings.get(collector)
        if reading is None:
            return None
        for s in reading.samples:
            if s.metric == metric and s.labels == labels:
                return s.value
        return None


class History:
    def __init__(self, size: int):
        if size < 1:
            raise ValueError("history size must be at least 1")
        self.size = size
        self._lock = threading.Lock()
        self._buffers: dict[str, deque[Reading]] = {}
        self._snapshot = Snapshot(0.0, MappingProxyType({}))

    def append(self, reading: Reading) -> None:
        with self._lock:
            self._buffers.setdefault(reading.collector, deque(maxlen=self.size)).append(reading)
            latest = {**self._snapshot.readings, reading.collector: reading}
            self._snapshot = Snapshot(max(self._snapshot.at, reading.at), MappingProxyType(latest))

    def forget(self, collector: str) -> None:
        """Drop a collector's latest reading from the snapshot (it is down: its values are stale)."""
        with self._lock:
            if collector in self._snapshot.readings:
                latest = {k: v for k, v in self._snapshot.readings.items() if k != collector}
                self._snapshot = Snapshot(self._snapshot.at, MappingProxyType(latest))

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def readings(self, collector: str, since: float = float("-inf")) -> tuple[Reading, ...]:
        """This collector's readings taken at or after `since`, oldest first."""
        with self._lock:
            buf = tuple(self._buffers.get(collector, ()))
        return tuple(r for r in buf if r.at >= since)

    def all(self) -> tuple[Reading, ...]:
        """Every reading of every collector (what rule evaluation reads), collector by collector."""
        with self._lock:
            return tuple(r for buf in self._buffers.values() for r in buf)

    def window(
        self, collector: str, metric: str, since: float = float("-inf")
    ) -> tuple[tuple[float, Mapping[Labels, float]], ...]:
        """(time, {labels: value}) for `metric` over the collector's readings since `since`, oldest first."""
        return tuple((r.at, MappingProxyType(r.values(metric))) for r in self.readings(collector, since))

    def series(
        self, collector: str, metric: str, labels: Labels, since: float = float("-inf")
    ) -> tuple[tuple[float, float], ...]:
        """(time, value) of one labelled series since `since`; cycles where it was absent are skipped."""
        out = []
        for r in self.readings(collector, since):
            for s in r.samples:
                if s.metric == metric and s.labels == labels:
                    out.append((r.at, s.value))
                    break
        return tuple(out)
