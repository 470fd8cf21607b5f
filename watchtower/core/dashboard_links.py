"""Stable identities of the dashboards: board UIDs, panel ids, and the link to the panel of a rule.

Kept free of the Grafana SDK and of the rule models so the rule loader can stamp each rule's Slack link
(`dashboard`) without building any dashboard.
"""

from __future__ import annotations

import zlib

SLA_BOARD = "sla"


def board_uid(name: str) -> str:
    return f"watchtower-{name}"


def panel_id(uid: str, key: str) -> int:
    """A stable panel id from the board and the panel's key (Grafana ids are ints unique per board)."""
    return zlib.crc32(f"{uid}/{key}".encode()) % 1_000_000 + 1


def rule_panel_key(rule_name: str) -> str:
    return f"rule:{rule_name}"


def rule_link(base_url: str, rule_name: str) -> str:
    """The URL of the SLA board's panel that draws the rule against its bound."""
    uid = board_uid(SLA_BOARD)
    return f"{base_url.rstrip('/')}/d/{uid}/{uid}?viewPanel={panel_id(uid, rule_panel_key(rule_name))}"
