"""The alert lifecycle: from rule results to notifications. A pure state machine; the caller stores the state.

    new_state, notifications = step(state, results, now, config)

Per alert (one fingerprint = rule + labels):

    inactive --breaching--> pending --`for` elapsed--> firing --not breaching for `keep_firing_for`--> resolved
                            pending --not breaching--> inactive (forgotten; pending never notifies)
                            resolved --breaching--> pending (or firing at once when `for` is 0)

A result that is not breaching, is no data, or is missing (the series disappeared) all count as "not
breaching". Alerts of rules listed in `skipped_rules` (the rule failed this cycle) keep their state.

Notifications are per group, as Alertmanager does: alerts on a route are grouped by the route's `group_by`
labels (plus the pseudo-label `rule`). A group opens an incident with FIRING once it has a
firing alert and `group_wait` has passed, so alerts that fire together share one message. While open, any
change of its announced alerts (a new one, a state or severity change, one resolving) sends an UPDATE, at most
once per `group_interval`; with no change, a firing group repeats as an UPDATE every `repeat_interval`. When no
alert of the group fires any more, RESOLVED closes the incident. Idempotency keys are
`<group key>@<incident start ms>#<sequence>`: deterministic, so a retried step never double-posts.

Silences (`watchtower.alerting.silences`, kept by the store and passed in) mute by label matchers between
`starts_at` and `ends_at`: a muted alert still moves through its states but appears in no message. When a
silence ends while its alert fires, the next step announces it (FIRING, or an UPDATE of an open incident).

The whole state is plain data: `state.to_dict()` is JSON-able and `LifecycleState.from_dict` restores it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from watchtower.alerting.codec import alert_from_dict, alert_to_dict, labels_from_list, labels_to_list
from watchtower.alerting.model import (
    Alert,
    AlertState,
    Notification,
    NotificationKind,
    RuleResult,
    fingerprint,
)
from watchtower.alerting.silences import Silence, silenced
from watchtower.core.types import Labels

STATE_VERSION = 1


# ---------------------------------------------------------------------------------------------- config


@dataclass(frozen=True, slots=True)
class RuleTiming:
    for_: float = 0.0
    keep_firing_for: float = 0.0
    route: str = "default"


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    group_by: tuple[str, ...] = ()
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 4 * 3600.0


@dataclass(frozen=True)
class LifecycleConfig:
    """Per-rule timing and per-route grouping. Unknown rules get RuleTiming(); unknown routes the default."""

    rules: Mapping[str, RuleTiming] = field(default_factory=dict)
    routes: Mapping[str, RoutePolicy] = field(default_factory=dict)

    def timing(self, rule: str) -> RuleTiming:
        return self.rules.get(rule) or RuleTiming()

    def policy(self, route: str) -> RoutePolicy:
        return self.routes.get(route) or self.routes.get("default") or RoutePolicy()


# ----------------------------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class AlertRecord:
    alert: Alert
    route: str
    last_breach_at: float | None  # the newest breaching result; keep_firing_for counts from here


@dataclass(frozen=True, slots=True)
class GroupRecord:
    key: str
    route: str
    labels: Labels
    waiting_since: float | None = None  # first firing alert seen while no incident is open (group_wait)
    opened_at: float | None = None  # when FIRING went out; None while waiting
    seq: int = 0  # messages sent in this incident
    last_sent_at: float | None = None
    sent: tuple[tuple[str, str, str], ...] = ()  # (fingerprint, state, severity) as last announced

    @property
    def incident_key(self) -> str:
        return f"{self.key}@{round((self.opened_at or 0.0) * 1000)}"


@dataclass(frozen=True)
class LifecycleState:
    alerts: Mapping[str, AlertRecord] = field(default_factory=dict)
    groups: Mapping[str, GroupRecord] = field(default_factory=dict)

    def active(self) -> list[Alert]:
        """Pending and firing alerts, for status pages."""
        return [
            r.alert
            for _, r in sorted(self.alerts.items())
            if r.alert.state in (AlertState.PENDING, AlertState.FIRING)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "alerts": [_record_to_dict(r) for _, r in sorted(self.alerts.items())],
            "groups": [_group_to_dict(g) for _, g in sorted(self.groups.items())],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LifecycleState:
        if d.get("version") != STATE_VERSION:
            raise ValueError(
                f"lifecycle state version {d.get('version')!r} is not {STATE_VERSION}; start from an empty state"
            )
        records = [_record_from_dict(x) for x in d.get("alerts", ())]
        groups = [_group_from_dict(x) for x in d.get("groups", ())]
        return cls(
            alerts={r.alert.fingerprint: r for r in records},
            groups={g.key: g for g in groups},
        )


def alert_labels(alert: Alert) -> dict[str, str]:
    """An alert's labels plus the pseudo-label `rule`, for grouping (silences match the same way)."""
    return {**dict(alert.labels), "rule": alert.rule}


# ------------------------------------------------------------------------------------------------ step


def step(
    state: LifecycleState,
    results: Iterable[RuleResult],
    now: float,
    config: LifecycleConfig,
    *,
    silences: Sequence[Silence] = (),
    skipped_rules: frozenset[str] = frozenset(),
) -> tuple[LifecycleState, list[Notification]]:
    """Advance every alert with this cycle's results, then decide what each group must send. Pure.

    `silences` are the current silences (the store keeps them); inactive or expired ones are ignored.
    """
    latest: dict[str, RuleResult] = {}
    for r in results:
        latest[fingerprint(r.rule, r.labels)] = r
    alerts: dict[str, AlertRecord] = {}
    for fp in sorted(set(state.alerts) | set(latest)):
        prev = state.alerts.get(fp)
        if fp not in latest and prev is not None and prev.alert.rule in skipped_rules:
            alerts[fp] = prev
            continue
        rec = _advance(fp, prev, latest.get(fp), now, config)
        if rec is not None:
            alerts[fp] = rec
    groups, notes, announced = _flush(alerts, state.groups, tuple(silences), now, config)
    for fp in announced:
        alerts.pop(fp, None)
    return LifecycleState(alerts=alerts, groups=groups), notes


def _advance(
    fp: str, prev: AlertRecord | None, r: RuleResult | None, now: float, config: LifecycleConfig
) -> AlertRecord | None:
    was = prev.alert.state if prev else AlertState.INACTIVE
    if r is not None and r.breaching and not r.no_data:
        timing = config.timing(r.rule)
        if was is AlertState.FIRING:
            state, active_since, firing_since = (
                AlertState.FIRING,
                prev.alert.active_since,
                prev.alert.firing_since,
            )  # type: ignore[union-attr]
        else:
            active_since = prev.alert.active_since if was is AlertState.PENDING else now  # type: ignore[union-attr]
            due = now - (active_since or now) >= timing.for_
            state, firing_since = (AlertState.FIRING, now) if due else (AlertState.PENDING, None)
        alert = Alert(
            fingerprint=fp,
            rule=r.rule,
            labels=r.labels,
            state=state,
            severity=r.severity,
            summary=r.summary,
            value=r.value,
            bound=r.bound,
            active_since=active_since,
            firing_since=firing_since,
            runbook=r.runbook,
            dashboard=r.dashboard,
            offenders=r.offenders,
        )
        return AlertRecord(alert, timing.route, now)
    if prev is None or was in (AlertState.PENDING, AlertState.INACTIVE):
        return None  # pending that stops breaching is forgotten without a word
    if was is AlertState.FIRING:
        keep = config.timing(prev.alert.rule).keep_firing_for
        if now - (prev.last_breach_at if prev.last_breach_at is not None else now) < keep:
            return prev  # hysteresis: a short dip does not resolve (and then re-fire)
        return replace(prev, alert=replace(prev.alert, state=AlertState.RESOLVED, resolved_at=now))
    return prev  # resolved, waiting to be announced


def _group_of(rec: AlertRecord, config: LifecycleConfig) -> tuple[str, Labels]:
    labels = alert_labels(rec.alert)
    glabels = tuple(sorted((k, labels.get(k, "")) for k in config.policy(rec.route).group_by))
    inner = ",".join(f'{k}="{v}"' for k, v in glabels)
    return f"{rec.route}{{{inner}}}", glabels


def _flush(
    alerts: Mapping[str, AlertRecord],
    groups: Mapping[str, GroupRecord],
    silences: tuple[Silence, ...],
    now: float,
    config: LifecycleConfig,
) -> tuple[dict[str, GroupRecord], list[Notification], set[str]]:
    members: dict[str, list[AlertRecord]] = defaultdict(list)
    glabels: dict[str, tuple[str, Labels]] = {}
    for fp in sorted(alerts):
        key, gl = _group_of(alerts[fp], config)
        members[key].append(alerts[fp])
        glabels[key] = (alerts[fp].route, gl)
    out_groups: dict[str, GroupRecord] = {}
    notes: list[Notification] = []
    forget: set[str] = set()  # resolved alerts that were announced (or never need to be)

    for key in sorted(set(members) | set(groups)):
        recs = members.get(key, [])
        g = groups.get(key)
        route, gl = glabels.get(key) or (g.route, g.labels)  # type: ignore[union-attr]
        policy = config.policy(route)
        muted = {r.alert.fingerprint for r in recs if silenced(silences, r.alert.rule, r.alert.labels, now)}
        visible = [
            r.alert
            for r in recs
            if r.alert.fingerprint not in muted and r.alert.state in (AlertState.FIRING, AlertState.RESOLVED)
        ]
        visible_firing = [a for a in visible if a.state is AlertState.FIRING]
        resolved_fps = {r.alert.fingerprint for r in recs if r.alert.state is AlertState.RESOLVED}

        if g is None or g.opened_at is None:
            if not visible_firing:
                forget |= resolved_fps  # never announced: nothing to take back
                continue
            waiting_since = g.waiting_since if g is not None and g.waiting_since is not None else now
            g = GroupRecord(key, route, gl, waiting_since=waiting_since)
            if now - waiting_since >= policy.group_wait:
                g = replace(g, waiting_since=None, opened_at=now)
                g, note = _send(g, NotificationKind.FIRING, visible_firing, muted, now, "open")
                notes.append(note)
            out_groups[key] = g
            continue

        since_last = now - (g.last_sent_at or now)
        if not any(r.alert.state is AlertState.FIRING for r in recs):
            if since_last < policy.group_interval:
                out_groups[key] = g
                continue
            if any(fp not in muted for fp, _, _ in g.sent):
                _, note = _send(
                    g,
                    NotificationKind.RESOLVED,
                    [a for a in visible if a.state is AlertState.RESOLVED],
                    muted,
                    now,
                    "resolved",
                )
                notes.append(note)
            forget |= resolved_fps
            continue  # incident closed: the group record goes

        current = {a.fingerprint: (a.state.value, a.severity.value) for a in visible}
        before = {fp: (st, sev) for fp, st, sev in g.sent if fp not in muted}
        reason = None
        if current != before and since_last >= policy.group_interval:
            reason = "change"
        elif visible_firing and since_last >= policy.repeat_interval:
            reason = "repeat"
        if reason is not None:
            g, note = _send(g, NotificationKind.UPDATE, visible, muted, now, reason)
            notes.append(note)
            forget |= {a.fingerprint for a in visible if a.state is AlertState.RESOLVED}
        out_groups[key] = g
    return out_groups, notes, forget


def _send(
    g: GroupRecord, kind: NotificationKind, shown: list[Alert], muted: set[str], now: float, reason: str
) -> tuple[GroupRecord, Notification]:
    seq = g.seq + 1
    carried = tuple(
        entry for entry in g.sent if entry[0] in muted
    )  # what we last said about muted alerts stands
    sent = tuple(
        sorted(
            carried
            + tuple(
                (a.fingerprint, a.state.value, a.severity.value)
                for a in shown
                if a.state is AlertState.FIRING
            )
        )
    )
    g = replace(g, seq=seq, last_sent_at=now, sent=sent)
    note = Notification(
        group_key=g.incident_key,
        idempotency_key=f"{g.incident_key}#{seq}",
        kind=kind,
        alerts=tuple(sorted(shown, key=lambda a: (a.rule, a.labels))),
        created_at=now,
        route=g.route,
        meta={"reason": reason, "seq": str(seq), "group": g.key},
    )
    return g, note


# -------------------------------------------------------------------------------------- serialization


def _record_to_dict(r: AlertRecord) -> dict[str, Any]:
    return {"alert": alert_to_dict(r.alert), "route": r.route, "last_breach_at": r.last_breach_at}


def _record_from_dict(d: Mapping[str, Any]) -> AlertRecord:
    return AlertRecord(alert_from_dict(d["alert"]), d["route"], d["last_breach_at"])


def _group_to_dict(g: GroupRecord) -> dict[str, Any]:
    return {
        "key": g.key,
        "route": g.route,
        "labels": labels_to_list(g.labels),
        "waiting_since": g.waiting_since,
        "opened_at": g.opened_at,
        "seq": g.seq,
        "last_sent_at": g.last_sent_at,
        "sent": [list(e) for e in g.sent],
    }


def _group_from_dict(d: Mapping[str, Any]) -> GroupRecord:
    return GroupRecord(
        key=d["key"],
        route=d["route"],
        labels=labels_from_list(d["labels"]),
        waiting_since=d["waiting_since"],
        opened_at=d["opened_at"],
        seq=d["seq"],
        last_sent_at=d["last_sent_at"],
        sent=tuple((str(a), str(b), str(c)) for a, b, c in d["sent"]),
    )
