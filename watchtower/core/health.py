"""The daemon's own health records and metric specs: filled by the daemon, served by the exposition.

Neutral ground, so `watchtower.exposition` needs nothing from `watchtower.daemon`: the collector runner
and the alert evaluator keep `CollectorHealth` / `EvaluationHealth` records (frozen, replaced on every
change), and `/metrics` renders them with the specs and histogram buckets defined here.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, replace

from watchtower.core.types import Kind, MetricSpec

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

RUNNER_SPECS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "watchtower_collector_up",
        Kind.GAUGE,
        "1 when the collector's last cycle succeeded, 0 when it failed.",
        ("collector",),
    ),
    MetricSpec(
        "watchtower_collector_errors_total", Kind.COUNTER, "Collection cycles that raised.", ("collector",)
    ),
    MetricSpec(
        "watchtower_collector_cycles_total",
        Kind.COUNTER,
        "Collection cycles run, failed or not.",
        ("collector",),
    ),
    MetricSpec(
        "watchtower_collector_overruns_total",
        Kind.COUNTER,
        "Cycles skipped because the previous one was still running.",
        ("collector",),
    ),
    MetricSpec(
        "watchtower_collector_duration_seconds",
        Kind.HISTOGRAM,
        "Wall time of collection cycles.",
        ("collector",),
    ),
    MetricSpec(
        "watchtower_collector_interval_seconds",
        Kind.GAUGE,
        "The collector's interval in use (follows its cost when its interval_policy is enabled).",
        ("collector",),
    ),
    MetricSpec(
        "watchtower_collector_last_success_timestamp_seconds",
        Kind.GAUGE,
        "Wall time of the last successful cycle.",
        ("collector",),
    ),
)


def with_duration(health, duration: float):
    """A copy of a health record (a frozen dataclass with `bucket_counts`, `duration_sum` and
    `last_duration`) with one more duration observed in the DURATION_BUCKETS histogram."""
    counts = list(health.bucket_counts)
    counts[bisect_left(DURATION_BUCKETS, duration)] += 1
    return replace(
        health,
        bucket_counts=tuple(counts),
        duration_sum=health.duration_sum + duration,
        last_duration=duration,
    )


@dataclass(frozen=True, slots=True)
class CollectorHealth:
    """How one collector is doing. Replaced, never mutated, so readers need no lock."""

    collector: str
    interval: float
    up: bool | None = None  # None until the first cycle ends
    since: float | None = None  # when `up` last changed
    last_success_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    last_duration: float | None = None
    cycles: int = 0
    errors: int = 0
    overruns: int = 0
    bucket_counts: tuple[int, ...] = (0,) * (len(DURATION_BUCKETS) + 1)  # per bucket, last is +Inf
    duration_sum: float = 0.0

    def observe(self, duration: float) -> CollectorHealth:
        return with_duration(self, duration)


ALERTING_SPECS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "watchtower_alert_state",
        Kind.GAUGE,
        "One series per active alert: 1 pending, 2 firing (inactive and resolved alerts drop out); "
        "labels are rule, severity and the alert's own labels (one named rule or severity becomes alert_rule, alert_severity)",
        ("rule", "severity"),
    ),
    MetricSpec(
        "watchtower_alert_evaluations_total", Kind.COUNTER, "Rule evaluation cycles run, failed or not."
    ),
    MetricSpec(
        "watchtower_alert_evaluation_errors_total",
        Kind.COUNTER,
        "Evaluation cycles that failed as a whole (Redis unreachable, say): the lifecycle did not advance.",
    ),
    MetricSpec(
        "watchtower_alert_evaluation_overruns_total",
        Kind.COUNTER,
        "Evaluation cycles skipped because the previous one was still running.",
    ),
    MetricSpec(
        "watchtower_alert_reading_evaluations_total",
        Kind.COUNTER,
        "Evaluation cycles started by fresh readings (only the rules reading them ran), not by the timer.",
    ),
    MetricSpec(
        "watchtower_alert_readings_total",
        Kind.COUNTER,
        "Readings published by the collectors; several coalesce into one reading-driven cycle.",
    ),
    MetricSpec(
        "watchtower_alert_evaluation_duration_seconds",
        Kind.HISTOGRAM,
        "Wall time of evaluation cycles: every rule, the lifecycle step and the Redis commit.",
    ),
    MetricSpec(
        "watchtower_alert_evaluation_last_success_timestamp_seconds",
        Kind.GAUGE,
        "Wall time of the last evaluation cycle that committed.",
    ),
    MetricSpec(
        "watchtower_alert_rule_errors_total",
        Kind.COUNTER,
        "Evaluations in which the rule raised (its alerts kept their state).",
        ("rule",),
    ),
    MetricSpec(
        "watchtower_notifications_delivered_total",
        Kind.COUNTER,
        "Notifications the notifier delivered (since the daemon started).",
        ("notifier",),
    ),
    MetricSpec(
        "watchtower_notifications_retried_total",
        Kind.COUNTER,
        "Sends that ended in RETRY (429, 5xx, network) and were rescheduled.",
        ("notifier",),
    ),
    MetricSpec(
        "watchtower_notifications_dead_lettered_total",
        Kind.COUNTER,
        "Notifications moved to the dead-letter list: refused for good, or retried past give_up_after.",
        ("notifier",),
    ),
    MetricSpec(
        "watchtower_notifier_errors_total",
        Kind.COUNTER,
        "Sends in which the notifier raised (a bug; retried like RETRY).",
        ("notifier",),
    ),
)


@dataclass(frozen=True, slots=True)
class EvaluationHealth:
    """How the evaluation loop is doing. Replaced, never mutated, so readers need no lock."""

    cycles: int = 0
    errors: int = 0
    overruns: int = 0
    reading_cycles: int = 0  # cycles started by readings (the rest by the timer)
    ok: bool | None = None  # None until the first cycle ends
    last_success_at: float | None = None
    last_error: str | None = None
    last_duration: float | None = None
    bucket_counts: tuple[int, ...] = (0,) * (len(DURATION_BUCKETS) + 1)
    duration_sum: float = 0.0

    def observe(self, duration: float) -> EvaluationHealth:
        return with_duration(self, duration)


# Only with `ha.enabled`: which of several daemons acts (actuates, pages) now.
HA_SPECS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "watchtower_ha_leader",
        Kind.GAUGE,
        "1 while this daemon holds the HA lease (it evaluates, pages and actuates), 0 while it follows.",
        ("holder",),
    ),
    MetricSpec(
        "watchtower_ha_fencing_token",
        Kind.GAUGE,
        "The fencing token of this daemon's lease while it leads (larger for every new leader).",
        ("holder",),
    ),
    MetricSpec(
        "watchtower_ha_lease_acquisitions_total",
        Kind.COUNTER,
        "Times this daemon acquired the lease; more than one means leadership moved away and back.",
        ("holder",),
    ),
    MetricSpec(
        "watchtower_ha_lease_losses_total",
        Kind.COUNTER,
        "Times this daemon lost the lease while leading (renewal failed, expired or taken).",
        ("holder",),
    ),
)
