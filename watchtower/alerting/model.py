"""The data that flows from rule evaluation to notifiers. Immutable; no I/O here.

rules (pure) --RuleResult--> lifecycle (pure state machine, owns fingerprints, pending/firing/resolved,
grouping, silences, repeat intervals) --Notification--> outbox (Redis, durable) --> notifiers (I/O).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum

from watchtower.core.types import Labels


class Severity(str, Enum):
    PAGE = "page"
    TICKET = "ticket"
    INFO = "info"


class AlertState(str, Enum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


def fingerprint(rule: str, labels: Labels) -> str:
    """Stable id of one alert: the rule name plus its label set."""
    raw = rule + "\x00" + "\x00".join(f"{k}={v}" for k, v in labels)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Offender:
    """One of the worst series behind a breach (e.g. a partition), shown in the message."""

    labels: Labels
    value: float


@dataclass(frozen=True, slots=True)
class RuleResult:
    """What one rule says about one label set at `now`: breaching or not, the value and the bound."""

    rule: str
    labels: Labels
    breaching: bool
    value: float | None
    bound: float | None
    severity: Severity
    summary: str
    runbook: str = ""
    dashboard: str = ""
    offenders: tuple[Offender, ...] = ()
    no_data: bool = False


@dataclass(frozen=True, slots=True)
class Alert:
    fingerprint: str
    rule: str
    labels: Labels
    state: AlertState
    severity: Severity
    summary: str
    value: float | None
    bound: float | None
    active_since: float | None  # when it first breached (pending start)
    firing_since: float | None
    resolved_at: float | None = None
    runbook: str = ""
    dashboard: str = ""
    offenders: tuple[Offender, ...] = ()


class NotificationKind(str, Enum):
    FIRING = "firing"  # first message of an incident (opens the thread)
    UPDATE = "update"  # state or membership change, or a repeat of a long-firing incident
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to deliver. `group_key` identifies the incident (one Slack thread);
    `idempotency_key` is unique per message so a retried delivery never posts twice."""

    group_key: str
    idempotency_key: str
    kind: NotificationKind
    alerts: tuple[Alert, ...]
    created_at: float
    route: str = "default"
    meta: dict[str, str] = field(default_factory=dict)


class DeliveryStatus(str, Enum):
    DELIVERED = "delivered"
    RETRY = "retry"  # transient (429, 5xx, network): try again after `retry_after`
    FAILED = "failed"  # permanent (bad token, channel not found): do not retry


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    status: DeliveryStatus
    retry_after: float | None = None
    detail: str = ""  # never contains a token or webhook URL
    # Where the message landed, so updates can edit it and replies can thread under it (Slack: channel, ts).
    thread_ref: dict[str, str] = field(default_factory=dict)
