"""JSON-safe dicts for alerts and notifications: the one codec of the lifecycle state, the Redis outbox
and the webhook payload."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from watchtower.alerting.model import Alert, AlertState, Notification, NotificationKind, Offender, Severity
from watchtower.core.types import Labels


def labels_to_list(labels: Labels) -> list[list[str]]:
    return [[k, v] for k, v in labels]


def labels_from_list(items: Iterable[Iterable[str]]) -> Labels:
    return tuple((str(k), str(v)) for k, v in items)


def alert_to_dict(a: Alert) -> dict[str, Any]:
    return {
        "fingerprint": a.fingerprint,
        "rule": a.rule,
        "labels": labels_to_list(a.labels),
        "state": a.state.value,
        "severity": a.severity.value,
        "summary": a.summary,
        "value": a.value,
        "bound": a.bound,
        "active_since": a.active_since,
        "firing_since": a.firing_since,
        "resolved_at": a.resolved_at,
        "runbook": a.runbook,
        "dashboard": a.dashboard,
        "offenders": [{"labels": labels_to_list(o.labels), "value": o.value} for o in a.offenders],
    }


def alert_from_dict(d: Mapping[str, Any]) -> Alert:
    return Alert(
        fingerprint=d["fingerprint"],
        rule=d["rule"],
        labels=labels_from_list(d["labels"]),
        state=AlertState(d["state"]),
        severity=Severity(d["severity"]),
        summary=d["summary"],
        value=d["value"],
        bound=d["bound"],
        active_since=d["active_since"],
        firing_since=d["firing_since"],
        resolved_at=d.get("resolved_at"),
        runbook=d.get("runbook", ""),
        dashboard=d.get("dashboard", ""),
        offenders=tuple(Offender(labels_from_list(o["labels"]), o["value"]) for o in d.get("offenders", ())),
    )


def notification_to_dict(n: Notification) -> dict[str, Any]:
    return {
        "group_key": n.group_key,
        "idempotency_key": n.idempotency_key,
        "kind": n.kind.value,
        "alerts": [alert_to_dict(a) for a in n.alerts],
        "created_at": n.created_at,
        "route": n.route,
        "meta": dict(n.meta),
    }


def notification_from_dict(d: dict[str, Any]) -> Notification:
    return Notification(
        group_key=d["group_key"],
        idempotency_key=d["idempotency_key"],
        kind=NotificationKind(d["kind"]),
        alerts=tuple(alert_from_dict(a) for a in d["alerts"]),
        created_at=d["created_at"],
        route=d.get("route", "default"),
        meta=dict(d.get("meta", {})),
    )
