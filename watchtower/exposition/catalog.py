"""Every metric family the daemon can expose, and the docs/metrics.md table generated from them.

Regenerate the doc with `python -m watchtower.exposition.catalog > docs/metrics.md`; a unit test fails
when a spec is missing from it. New collectors add their `SPECS` to `SOURCES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from watchtower.collectors.canary import SPECS as CANARY_SPECS
from watchtower.collectors.dlq import SPECS as DLQ_SPECS
from watchtower.collectors.e2e_latency import SPECS as E2E_LATENCY_SPECS
from watchtower.collectors.flink import SPECS as FLINK_SPECS
from watchtower.collectors.lag_tracker import SPECS as KAFKA_LAG_SPECS
from watchtower.collectors.spark_progress import SPECS as SPARK_PROGRESS_SPECS
from watchtower.core.types import MetricSpec
from watchtower.daemon.evaluation import ALERTING_SPECS
from watchtower.daemon.runner import RUNNER_SPECS
from watchtower.scale.metrics import SPECS as SCALING_SPECS

SOURCES: dict[str, tuple[MetricSpec, ...]] = {
    "daemon": RUNNER_SPECS,
    "kafka_lag": KAFKA_LAG_SPECS,
    "e2e_latency": E2E_LATENCY_SPECS,
    "canary": CANARY_SPECS,
    "dlq": DLQ_SPECS,
    "spark_progress": SPARK_PROGRESS_SPECS,
    "flink": FLINK_SPECS,
    "alerting": ALERTING_SPECS,
    "scaling": SCALING_SPECS,
}


def all_specs() -> Iterator[tuple[str, MetricSpec]]:
    for source, specs in SOURCES.items():
        for spec in specs:
            yield source, spec


def markdown() -> str:
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
    for source, s in all_specs():
        label_names = ", ".join(f"`{n}`" for n in s.label_names) or "-"
        meaning = s.help.replace("|", "\\|")
        lines.append(f"| `{s.name}` | {s.kind.value} | {label_names} | {source} | {meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
