"""Block Kit builders: pure functions, checked against Slack's limits and slack-sdk's block models."""

from __future__ import annotations

import pytest
from alerting_samples import T0, alert, note
from slack_fake import block_problems

from watchtower.alerting.model import AlertState, NotificationKind, Offender, Severity
from watchtower.core.types import labels
from watchtower.notify.slack_blocks import (
    escape,
    fmt_duration,
    fmt_time,
    fmt_value,
    reply_message,
    root_message,
    title,
    webhook_message,
)

FIRE = note(NotificationKind.FIRING, "g")
MANY = note(
    NotificationKind.UPDATE,
    "g",
    *[alert(group=f"grp-{i}", severity=Severity.TICKET if i else Severity.PAGE) for i in range(14)],
)
RESOLVED = note(NotificationKind.RESOLVED, "g", alert(AlertState.RESOLVED))


@pytest.mark.parametrize("n", [FIRE, MANY, RESOLVED])
@pytest.mark.parametrize("build", [root_message, reply_message, webhook_message])
def test_every_message_is_valid_block_kit_with_fallback_text(n, build) -> None:
    msg = build(n)
    assert msg["text"] and len(msg["text"]) <= 300
    assert block_problems(msg["blocks"]) == []


def test_root_says_severity_what_value_bound_offenders_since_and_links() -> None:
    msg = root_message(FIRE)
    flat = str(msg["blocks"])
    assert (
        msg["blocks"][0]["text"]["text"]
        == ":rotating_light: FIRING [PAGE] lag_high · group=orders-enricher topic=orders"
    )
    assert "45,000 (bound 10,000)" in flat
    assert "`partition=3 topic=orders` 30,000" in flat  # worst first
    assert f"<!date^{int(T0 - 300)}^" in flat  # since when, in each reader's time zone
    [actions] = [b for b in msg["blocks"] if b["type"] == "actions"]
    assert [e["url"] for e in actions["elements"]] == [FIRE.alerts[0].runbook, FIRE.alerts[0].dashboard]


def test_resolved_root_and_reply() -> None:
    assert root_message(RESOLVED)["blocks"][0]["text"]["text"].startswith(":white_check_mark: RESOLVED")
    text = reply_message(RESOLVED)["blocks"][0]["text"]["text"]
    assert text.startswith(":white_check_mark: *Resolved* after 20m00s.")


def test_many_alerts_are_summarised_worst_first() -> None:
    msg = root_message(MANY)
    assert title(MANY) == "FIRING [PAGE] lag_high (14 alerts)"
    listing = msg["blocks"][1]["text"]["text"]
    assert listing.splitlines()[0].startswith("• *lag_high* `group=grp-0")  # the page sorts first
    assert listing.endswith("… and 4 more")


def test_long_and_hostile_text_is_escaped_and_cut() -> None:
    a = alert(group="<!channel> & friends " + "x" * 400)
    a = a.__class__(**{**{f: getattr(a, f) for f in a.__slots__}, "summary": "<@U123> " + "y" * 5000})
    msg = root_message(note(NotificationKind.FIRING, "g", a))
    assert block_problems(msg["blocks"]) == []
    mrkdwn = str([b for b in msg["blocks"] if b["type"] != "header"])  # plain_text never pings anyone
    assert (
        "<!channel>" not in msg["text"]
        and "<!channel>" not in mrkdwn
        and "<@U123>" not in mrkdwn
        and "&lt;@U123&gt;" in mrkdwn
    )
    assert len(msg["blocks"][0]["text"]["text"]) == 150


def test_links_only_when_they_are_urls() -> None:
    a = alert()
    a = a.__class__(**{**{f: getattr(a, f) for f in a.__slots__}, "runbook": "see wiki", "dashboard": ""})
    assert all(b["type"] != "actions" for b in root_message(note(NotificationKind.FIRING, "g", a))["blocks"])


def test_many_offenders_are_capped() -> None:
    a = alert()
    offs = tuple(Offender(labels(partition=str(i)), float(i)) for i in range(12))
    a = a.__class__(**{**{f: getattr(a, f) for f in a.__slots__}, "offenders": offs})
    flat = str(root_message(note(NotificationKind.FIRING, "g", a))["blocks"])
    assert "partition=11" in flat and "partition=6" not in flat and "… and 7 more" in flat


@pytest.mark.parametrize(
    ("v", "out"),
    [
        (None, "no data"),
        (float("nan"), "NaN"),
        (0.5, "0.5"),
        (12.345, "12.3"),
        (45_000.0, "45,000"),
        (-250.0, "-250"),
    ],
)
def test_fmt_value(v, out) -> None:
    assert fmt_value(v) == out


def test_small_formatters() -> None:
    assert escape("a<b>&c") == "a&lt;b&gt;&amp;c"
    assert fmt_duration(59) == "59s" and fmt_duration(61) == "1m01s" and fmt_duration(3660) == "1h01m"
    assert fmt_time(None) == "unknown" and fmt_time(T0).endswith("|2023-11-14 22:13 UTC>")
