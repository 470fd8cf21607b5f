"""The collector seam: what a collector is. The data it returns lives in `watchtower.core.types`."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from watchtower.core.types import MetricSpec, Reading


@runtime_checkable
class Collector(Protocol):
    """One source of measurements.

    `specs` lists every metric family the collector may emit (for docs and exposition).
    `collect(now)` does I/O and may block up to the collector's own timeouts; it may raise, and the
    scheduler then marks the collector down, logs the change once and keeps the others running.
    `close()` releases clients; it must not raise.
    """

    name: str
    interval: float
    specs: tuple[MetricSpec, ...]

    def collect(self, now: float) -> Reading: ...

    def close(self) -> None: ...
