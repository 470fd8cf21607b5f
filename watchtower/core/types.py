"""The immutable data collectors hand to the rest of the daemon: labels, samples, readings, metric specs.

A collector returns a `Reading`: a flat set of labelled samples (the shape Prometheus exposition and rule
evaluation both want) plus an optional JSON-able `detail` for `/api/v1/status`. Samples carry their own
labels, so a partition that disappears simply stops appearing: no stale series.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

Labels = tuple[tuple[str, str], ...]


def labels(**kv: object) -> Labels:
    """Canonical (sorted) label tuple, hashable, usable as a dict key."""
    return tuple(sorted((k, str(v)) for k, v in kv.items()))


class Kind(str, Enum):
    GAUGE = "gauge"
    COUNTER = "counter"
    HISTOGRAM = "histogram"  # only the daemon's own timings; collectors emit gauges and counters


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """Name, type, help and label names of one metric family; `name` follows Prometheus conventions.

    `unit` is the Grafana unit id its panels use ("percentunit", "s", "cpm", ...); empty: guessed from the
    name's suffix (`_seconds`, `_bytes`, `_ratio`, `_per_second`, counters as rates), so set it only where
    that guess is wrong (a 0..1 share, a per-minute gauge).
    """

    name: str
    kind: Kind
    help: str
    label_names: tuple[str, ...] = ()
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Sample:
    metric: str
    labels: Labels
    value: float


@dataclass(frozen=True, slots=True)
class Reading:
    """What one collection cycle of one collector produced, at wall time `at` (epoch seconds)."""

    collector: str
    at: float
    samples: tuple[Sample, ...]
    detail: Mapping[str, Any] = field(default_factory=dict)

    def values(self, metric: str) -> dict[Labels, float]:
        return {s.labels: s.value for s in self.samples if s.metric == metric}
