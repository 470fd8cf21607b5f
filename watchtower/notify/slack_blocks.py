"""Slack Block Kit messages for an incident. Pure functions of a Notification: no I/O, no clock.

Two shapes:
- the *root* message opens the incident's thread and is edited in place on every change, so the top of
  the thread always shows the current state (firing, still firing with new values, resolved);
- a *reply* is posted in the thread for each change and for the resolve, so the history stays readable.
Incoming webhooks cannot edit or thread, so webhook mode posts the root shape every time.

Slack limits respected here: header text 150 chars, section text 3000, at most 10 fields of 2000,
button text 75, 50 blocks, fallback text kept short (it is what notifications and screen readers show).
"""

from __future__ import annotations

import time
from typing import Any

from watchtower.alerting.model import Alert, AlertState, Notification, NotificationKind, Offender, Severity

Message = dict[str, Any]  # {"text": fallback, "blocks": [...]}

MAX_ALERTS = 10
MAX_OFFENDERS = 5
EMOJI = {
    Severity.PAGE: ":rotating_light:",
    Severity.TICKET: ":warning:",
    Severity.INFO: ":information_source:",
}
RESOLVED_EMOJI = ":white_check_mark:"
_SEVERITY_ORDER = {Severity.PAGE: 0, Severity.TICKET: 1, Severity.INFO: 2}


def escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_value(v: float | None) -> str:
    if v is None:
        return "no data"
    if v != v:  # NaN
        return "NaN"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def fmt_labels(labels: tuple[tuple[str, str], ...]) -> str:
    return " ".join(f"{k}={v}" for k, v in labels) or "(no labels)"


def fmt_time(ts: float | None) -> str:
    """A Slack date token: every reader sees it in their own time zone; the fallback is UTC."""
    if ts is None:
        return "unknown"
    fallback = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))
    return f"<!date^{int(ts)}^{{date_short_pretty}} {{time}}|{fallback}>"


def fmt_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def worst_severity(alerts: tuple[Alert, ...]) -> Severity:
    return min((a.severity for a in alerts), key=_SEVERITY_ORDER.__getitem__, default=Severity.INFO)


def _resolved(n: Notification) -> bool:
    return n.kind is NotificationKind.RESOLVED or all(a.state is AlertState.RESOLVED for a in n.alerts)


def _since(a: Alert) -> float | None:
    return a.firing_since if a.firing_since is not None else a.active_since


def title(n: Notification) -> str:
    """One line naming the incident: state, severity, rule(s) and the labels that tell it apart."""
    sev = worst_severity(n.alerts)
    state = "RESOLVED" if _resolved(n) else "FIRING"
    rules = sorted({a.rule for a in n.alerts})
    if len(rules) == 1:
        what = rules[0] if len(n.alerts) == 1 else f"{rules[0]} ({len(n.alerts)} alerts)"
    else:
        what = f"{len(n.alerts)} alerts ({', '.join(rules)})"
    if len(n.alerts) == 1 and n.alerts[0].labels:
        what += f" · {fmt_labels(n.alerts[0].labels)}"
    return f"{state} [{sev.value.upper()}] {what}"


def fallback_text(n: Notification, prefix: str = "") -> str:
    summary = n.alerts[0].summary if n.alerts else ""
    # The fallback is parsed as mrkdwn too: escaped, or a label like "<!channel>" would ping everyone.
    return _cut(escape(f"{prefix}{title(n)}: {summary}".rstrip(": ")), 300)


def _value_line(a: Alert) -> str:
    if a.bound is None:
        return fmt_value(a.value)
    return f"{fmt_value(a.value)} (bound {fmt_value(a.bound)})"


def _offenders(offenders: tuple[Offender, ...]) -> str:
    top = sorted(offenders, key=lambda o: -o.value)[:MAX_OFFENDERS]
    lines = [f"• `{escape(fmt_labels(o.labels))}` {fmt_value(o.value)}" for o in top]
    if len(offenders) > MAX_OFFENDERS:
        lines.append(f"… and {len(offenders) - MAX_OFFENDERS} more")
    return "\n".join(lines)


def _alert_blocks(a: Alert) -> list[dict[str, Any]]:
    fields = [
        f"*Rule*\n{escape(a.rule)}",
        f"*Severity*\n{a.severity.value}",
        f"*Value*\n{_value_line(a)}",
        f"*State*\n{a.state.value}",
        f"*Since*\n{fmt_time(_since(a))}",
    ]
    if a.resolved_at is not None:
        fields.append(f"*Resolved*\n{fmt_time(a.resolved_at)}")
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _cut(escape(a.summary) or escape(a.rule), 3000)},
        },
        {"type": "section", "fields": [{"type": "mrkdwn", "text": _cut(f, 2000)} for f in fields]},
    ]
    if a.labels:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": _cut(f"`{escape(fmt_labels(a.labels))}`", 3000)}],
            }
        )
    if a.offenders:
        text = _cut(f"*Worst offenders*\n{_offenders(a.offenders)}", 3000)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    return blocks


def _alert_line(a: Alert) -> str:
    when = (
        f"resolved {fmt_time(a.resolved_at)}"
        if a.resolved_at is not None
        else f"{a.state.value} since {fmt_time(_since(a))}"
    )
    return _cut(f"• *{escape(a.rule)}* `{escape(fmt_labels(a.labels))}` {_value_line(a)} · {when}", 1000)


def _links(alerts: tuple[Alert, ...]) -> dict[str, Any] | None:
    runbook = next((a.runbook for a in alerts if a.runbook), "")
    dashboard = next((a.dashboard for a in alerts if a.dashboard), "")
    buttons = []
    for label, url, action in (("Runbook", runbook, "runbook"), ("Dashboard", dashboard, "dashboard")):
        if url.startswith(("http://", "https://")) and len(url) <= 3000:
            buttons.append(
                {
                    "type": "button",
                    "action_id": action,
                    "text": {"type": "plain_text", "text": label},
                    "url": url,
                }
            )
    return {"type": "actions", "elements": buttons} if buttons else None


def root_message(n: Notification) -> Message:
    """The message that opens the incident's thread and shows its current state."""
    resolved = _resolved(n)
    emoji = RESOLVED_EMOJI if resolved else EMOJI[worst_severity(n.alerts)]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(f"{emoji} {title(n)}", 150), "emoji": True},
        }
    ]
    if len(n.alerts) == 1:
        blocks += _alert_blocks(n.alerts[0])
    else:
        shown = sorted(n.alerts, key=lambda a: (_SEVERITY_ORDER[a.severity], a.rule, a.labels))[:MAX_ALERTS]
        lines = [_alert_line(a) for a in shown]
        if len(n.alerts) > MAX_ALERTS:
            lines.append(f"… and {len(n.alerts) - MAX_ALERTS} more")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut("\n".join(lines), 3000)}})
        worst = next((a for a in shown if a.offenders), None)
        if worst is not None:
            text = _cut(f"*Worst offenders ({escape(worst.rule)})*\n{_offenders(worst.offenders)}", 3000)
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    links = _links(n.alerts)
    if links:
        blocks.append(links)
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _cut(f"{emoji} watchtower · incident `{escape(n.group_key)}`", 3000),
                }
            ],
        }
    )
    return {"text": fallback_text(n), "blocks": blocks}


def reply_message(n: Notification) -> Message:
    """A thread reply saying what changed: an update (new values, alerts joining or leaving) or the resolve."""
    if n.kind is NotificationKind.RESOLVED:
        started = min((s for a in n.alerts if (s := _since(a)) is not None), default=None)
        ended = max((a.resolved_at for a in n.alerts if a.resolved_at is not None), default=n.created_at)
        took = f" after {fmt_duration(ended - started)}" if started is not None else ""
        head = f"{RESOLVED_EMOJI} *Resolved*{took}."
    else:
        firing = [a for a in n.alerts if a.state is AlertState.FIRING]
        head = (
            f"{EMOJI[worst_severity(n.alerts)]} *Update*: {len(firing)} of {len(n.alerts)} alert(s) firing."
        )
    reason = n.meta.get("reason", "")
    if reason:
        head += f" {escape(reason)}"
    lines = [_alert_line(a) for a in n.alerts[:MAX_ALERTS]]
    if len(n.alerts) > MAX_ALERTS:
        lines.append(f"… and {len(n.alerts) - MAX_ALERTS} more")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": _cut("\n".join([head, *lines]), 3000)}}]
    prefix = "" if n.kind is NotificationKind.RESOLVED else "Update: "
    return {"text": fallback_text(n, prefix), "blocks": blocks}


def webhook_message(n: Notification) -> Message:
    """Incoming webhooks can neither edit nor thread: every notification is a full message."""
    msg = root_message(n)
    if n.kind is NotificationKind.UPDATE:
        msg["text"] = fallback_text(n, "Update: ")
    return msg
