"""Every metric family the daemon can expose, and the docs/metrics.md table generated from them.

Regenerate the doc with `python -m watchtower.exposition.catalog > docs/metrics.md`; a unit test fails
when a spec is missing from it. Collector specs come from the collectors registry (each kind's `specs`).
"""

from __future__ import annotations

from collections.abc import Iterator

from watchtower.collectors.registry import REGISTRY, CollectorKinds
from watchtower.core.health import ALERTING_SPECS, HA_SPECS, RUNNER_SPECS
from watchtower.core.types import MetricSpec
from watchtower.scale.metrics import SPECS as SCALING_SPECS


def all_specs(registry: CollectorKinds = REGISTRY) -> Iterator[tuple[str, MetricSpec]]:
    """(source, spec) of every family: the daemon's own, each registered collector kind's, alerting's."""
    for spec in RUNNER_SPECS:
        yield "daemon", spec
    yield from registry.specs()
    for spec in ALERTING_SPECS:
        yield "alerting", spec
    for spec in SCALING_SPECS:
        yield "scaling", spec
    for spec in HA_SPECS:
        yield "ha", spec


def markdown(registry: CollectorKinds = REGISTRY) -> str:
    lines = [
        "# Metrics",
        "",
        "Everything `watchtower run` serves on `/metrics`. Generated from the collectors' `specs` by",
        "`python -m watchtower.exposition.catalog > docs/metrics.md`; `tests/unit/daemon/test_metrics_doc.py`",
        "fails when a metric is missing here.",
        "",
        "Series exist only while their subject does: a partition, group or topic that disappears, or a",
        "collector that is down, drops out of the next scrape (no stale labelled gauges). Lag in seconds is",
        "explained in [lag.md](lag.md).",
        "",
        "| Metric | Type | Labels | Source | Meaning |",
        "|---|---|---|---|---|",
    ]
    for source, s in all_specs(registry):
        label_names = ", ".join(f"`{n}`" for n in s.label_names) or "-"
        meaning = s.help.replace("|", "\\|")
        lines.append(f"| `{s.name}` | {s.kind.value} | {label_names} | {source} | {meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
