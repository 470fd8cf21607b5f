"""Sample alerts and notifications for the notifier and outbox tests (plain builders, no fixtures)."""

from __future__ import annotations

import itertools

from watchtower.alerting.model import (
    Alert,
    AlertState,
    Notification,
    NotificationKind,
    Offender,
    Severity,
    fingerprint,
)
from watchtower.core.types import labels

T0 = 1_700_000_000.0
_keys = itertools.count(1)


def alert(
    state: AlertState = AlertState.FIRING,
    severity: Severity = Severity.PAGE,
    rule: str = "lag_high",
    value: float | None = 45_000.0,
    bound: float | None = 10_000.0,
    **lbl: str,
) -> Alert:
    lbls = labels(**(lbl or {"group": "orders-enricher", "topic": "orders"}))
    return Alert(
        fingerprint=fingerprint(rule, lbls),
        rule=rule,
        labels=lbls,
        state=state,
        severity=severity,
        summary="Consumer lag above 10k messages for 5m",
        value=value,
        bound=bound,
        active_since=T0 - 600,
        firing_since=T0 - 300,
        resolved_at=T0 + 900 if state is AlertState.RESOLVED else None,
        runbook="https://runbooks.example.com/lag_high",
        dashboard="https://grafana.example.com/d/lag?var-group=orders-enricher",
        offenders=(
            Offender(labels(topic="orders", partition="3"), 30_000.0),
            Offender(labels(topic="orders", partition="1"), 12_000.0),
        ),
    )


def note(
    kind: NotificationKind = NotificationKind.FIRING,
    group_key: str = "lag_high/orders-enricher",
    *alerts: Alert,
    created_at: float = T0,
    route: str = "default",
    key: str | None = None,
) -> Notification:
    if not alerts:
        state = AlertState.RESOLVED if kind is NotificationKind.RESOLVED else AlertState.FIRING
        alerts = (alert(state),)
    return Notification(
        group_key=group_key,
        idempotency_key=key or f"{group_key}#{kind.value}#{next(_keys)}",
        kind=kind,
        alerts=alerts,
        created_at=created_at,
        route=route,
    )
