"""Prometheus families for the alerting loop, built fresh on each scrape from the evaluator and dispatcher.

`watchtower_alert_state` has one series per pending or firing alert (1 pending, 2 firing): an alert
that resolves is simply absent from the next scrape, as a vanished partition is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector as PromCollector
from prometheus_client.samples import Sample as PromSample

from watchtower.alerting.model import Alert, AlertState
from watchtower.core.health import ALERTING_SPECS, DURATION_BUCKETS, EvaluationHealth
from watchtower.exposition.prometheus import family_name

STATE_VALUE = {AlertState.PENDING: 1.0, AlertState.FIRING: 2.0}
_RESERVED = ("rule", "severity")
_DISPATCH = {
    "delivered": "watchtower_notifications_delivered_total",
    "retried": "watchtower_notifications_retried_total",
    "dead_lettered": "watchtower_notifications_dead_lettered_total",
    "errors": "watchtower_notifier_errors_total",
}


class DispatchCounts(Protocol):
    """What the exposition reads of a dispatcher: `<notifier>.<outcome>` counts and the notifier names."""

    counts: Mapping[str, int]
    notifiers: Mapping[str, object]


class AlertingSource(Protocol):
    """What the exposition reads of the alert evaluator (watchtower.daemon.evaluation.AlertEvaluator)."""

    health: EvaluationHealth
    rule_errors: Mapping[str, int]
    dispatcher: DispatchCounts | None

    def active(self) -> Iterable[Alert]: ...


class AlertingCollector(PromCollector):
    def __init__(self, evaluator: AlertingSource):
        self.evaluator = evaluator
        self.specs = {s.name: s for s in ALERTING_SPECS}

    def describe(self) -> Iterable[Metric]:
        return []

    def _family(self, name: str) -> Metric:
        spec = self.specs[name]
        return Metric(family_name(spec), spec.help, spec.kind.value)

    def collect(self) -> Iterator[Metric]:
        ev = self.evaluator
        state = self._family("watchtower_alert_state")
        for a in ev.active():
            lbl = {("alert_" + k if k in _RESERVED else k): v for k, v in a.labels}
            lbl.update(rule=a.rule, severity=a.severity.value)
            state.samples.append(PromSample("watchtower_alert_state", lbl, STATE_VALUE[a.state], None, None))
        yield state

        h = ev.health
        for name, value in (
            ("watchtower_alert_evaluations_total", h.cycles),
            ("watchtower_alert_evaluation_errors_total", h.errors),
            ("watchtower_alert_evaluation_overruns_total", h.overruns),
            ("watchtower_alert_reading_evaluations_total", h.reading_cycles),
            ("watchtower_alert_readings_total", ev.readings.published if ev.readings is not None else 0),
        ):
            m = self._family(name)
            m.samples.append(PromSample(name, {}, float(value), None, None))
            yield m
        if h.last_success_at is not None:
            m = self._family("watchtower_alert_evaluation_last_success_timestamp_seconds")
            m.samples.append(PromSample(m.name, {}, h.last_success_at, None, None))
            yield m
        duration = self._family("watchtower_alert_evaluation_duration_seconds")
        cumulative = 0
        for bound, count in zip((*DURATION_BUCKETS, float("inf")), h.bucket_counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            duration.samples.append(
                PromSample(duration.name + "_bucket", {"le": le}, float(cumulative), None, None)
            )
        duration.samples.append(PromSample(duration.name + "_count", {}, float(cumulative), None, None))
        duration.samples.append(PromSample(duration.name + "_sum", {}, h.duration_sum, None, None))
        yield duration

        rule_errors = self._family("watchtower_alert_rule_errors_total")
        # Every rule from the start (at 0), so the series exists before the first error (a rate can see it).
        for rule in sorted({r.name for r in ev.ruleset.rules} | set(ev.rule_errors)):
            rule_errors.samples.append(
                PromSample(
                    "watchtower_alert_rule_errors_total",
                    {"rule": rule},
                    float(ev.rule_errors.get(rule, 0)),
                    None,
                    None,
                )
            )
        yield rule_errors

        if ev.dispatcher is None:
            return
        counts = dict(ev.dispatcher.counts)
        for what, name in _DISPATCH.items():
            m = self._family(name)
            for sink in sorted(ev.dispatcher.notifiers):
                m.samples.append(
                    PromSample(name, {"notifier": sink}, float(counts.get(f"{sink}.{what}", 0)), None, None)
                )
            yield m
