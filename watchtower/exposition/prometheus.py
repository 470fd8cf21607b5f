"""A prometheus-client custom collector over the daemon's latest snapshot.

`collect()` builds fresh metric families on every scrape from the latest reading of each collector that
is up, so a partition, group or topic that disappears disappears from /metrics too: there are no
labelled gauges left behind. A collector that is down exposes only `watchtower_collector_up 0` and its
counters, not its last (stale) values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector as PromCollector
from prometheus_client.samples import Sample as PromSample

from watchtower.core.health import DURATION_BUCKETS, RUNNER_SPECS, CollectorHealth
from watchtower.core.history import History
from watchtower.core.types import Kind, MetricSpec


def family_name(spec: MetricSpec) -> str:
    """prometheus-client names counter families without `_total` and adds it to the samples."""
    return (
        spec.name[: -len("_total")]
        if spec.kind is Kind.COUNTER and spec.name.endswith("_total")
        else spec.name
    )


class SnapshotCollector(PromCollector):
    def __init__(
        self,
        history: History,
        specs: Mapping[str, Iterable[MetricSpec]],
        health: Callable[[], Mapping[str, CollectorHealth]],
    ):
        self.history = history
        self.specs = {name: tuple(s) for name, s in specs.items()}
        self.health = health

    def describe(self) -> Iterable[Metric]:
        return []  # do not call collect() at registration time

    def collect(self) -> Iterator[Metric]:
        snapshot = self.history.snapshot()
        health = self.health()
        # One family per name across collectors: the Spark and the Flink collector both report
        # watchtower_checkpoint_duration_seconds (engine label apart), and the text format allows a
        # single HELP/TYPE block per name.
        families: dict[str, Metric] = {}
        for collector, specs in self.specs.items():
            reading = snapshot.readings.get(collector)
            h = health.get(collector)
            if reading is None or (h is not None and h.up is False):
                continue
            declared = {spec.name: spec for spec in specs}
            for s in reading.samples:
                spec = declared.get(s.metric)
                if spec is None:
                    continue  # not declared in specs: not exposed (the docs test keeps them in sync)
                m = families.get(spec.name)
                if m is None:
                    m = families[spec.name] = Metric(family_name(spec), spec.help, spec.kind.value)
                m.samples.append(PromSample(s.metric, dict(s.labels), s.value, None, None))
        yield from families.values()
        yield from self._runner_metrics(health)

    def _runner_metrics(self, health: Mapping[str, CollectorHealth]) -> Iterator[Metric]:
        specs = {s.name: s for s in RUNNER_SPECS}

        def family(name: str) -> Metric:
            spec = specs[name]
            return Metric(family_name(spec), spec.help, spec.kind.value)

        up, errors, cycles, overruns = (
            family("watchtower_collector_up"),
            family("watchtower_collector_errors_total"),
            family("watchtower_collector_cycles_total"),
            family("watchtower_collector_overruns_total"),
        )
        duration, last_success, interval = (
            family("watchtower_collector_duration_seconds"),
            family("watchtower_collector_last_success_timestamp_seconds"),
            family("watchtower_collector_interval_seconds"),
        )
        for name, h in sorted(health.items()):
            lbl = {"collector": name}
            up.samples.append(PromSample("watchtower_collector_up", lbl, 1.0 if h.up else 0.0, None, None))
            errors.samples.append(
                PromSample("watchtower_collector_errors_total", lbl, float(h.errors), None, None)
            )
            cycles.samples.append(
                PromSample("watchtower_collector_cycles_total", lbl, float(h.cycles), None, None)
            )
            overruns.samples.append(
                PromSample("watchtower_collector_overruns_total", lbl, float(h.overruns), None, None)
            )
            interval.samples.append(
                PromSample("watchtower_collector_interval_seconds", lbl, float(h.interval), None, None)
            )
            if h.last_success_at is not None:
                last_success.samples.append(
                    PromSample(
                        "watchtower_collector_last_success_timestamp_seconds",
                        lbl,
                        h.last_success_at,
                        None,
                        None,
                    )
                )
            cumulative = 0
            for bound, count in zip((*DURATION_BUCKETS, float("inf")), h.bucket_counts, strict=True):
                cumulative += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                duration.samples.append(
                    PromSample(
                        "watchtower_collector_duration_seconds_bucket",
                        {**lbl, "le": le},
                        float(cumulative),
                        None,
                        None,
                    )
                )
            duration.samples.append(
                PromSample("watchtower_collector_duration_seconds_count", lbl, float(cumulative), None, None)
            )
            duration.samples.append(
                PromSample("watchtower_collector_duration_seconds_sum", lbl, h.duration_sum, None, None)
            )
        yield from (up, errors, cycles, overruns, interval, duration)
        if last_success.samples:
            yield last_success
