"""The `alerting:` config section: which rule files the daemon evaluates, how often, and who hears about it.

Notifiers are named instances with a `kind` (slack, webhook, memory), as Burrow's notifier modules are:

    alerting:
      rules: [alerts/]
      interval: 1s
      notifiers:
        slack-oncall: {kind: slack, token: xoxb-..., channel: C0DEFAULT}
        audit:        {kind: webhook, url: https://example.com/hook}

The notifier kinds' own settings are their config models (`SlackConfig`, `WebhookConfig`); this module only
adds the `kind` tag. Validation only: nothing here connects anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from watchtower.core.units import Duration
from watchtower.notify.slack import SlackConfig
from watchtower.notify.webhook import WebhookConfig


class SlackNotifierConfig(SlackConfig):
    """Slack (Web API with a bot token, or an incoming webhook); see docs/alerting.md#slack."""

    kind: Literal["slack"]


class WebhookNotifierConfig(WebhookConfig):
    """A generic JSON webhook with an Idempotency-Key header; see docs/alerting.md#generic-webhook."""

    kind: Literal["webhook"]


class MemoryNotifierConfig(BaseModel):
    """Keeps what it is sent in the daemon's memory: dry runs and tests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["memory"]


NotifierConfig = Annotated[
    SlackNotifierConfig | WebhookNotifierConfig | MemoryNotifierConfig, Field(discriminator="kind")
]


class AlertingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # Rule files or directories of *.yaml rule files (not recursive); every rule name must be unique.
    rules: tuple[Path, ...] = (Path("alerts"),)
    # How often the rules are evaluated over the history. With collectors at 1-10 s, 1 s keeps detection
    # within one collection cycle of the data; an evaluation of the default rules costs milliseconds.
    interval: Duration = Field(default=1.0, gt=0)
    # Besides the timer, a collector's new reading starts an evaluation of the rules that read its metrics
    # at once; those reading-driven evaluations take at most this share of the evaluator's time (after one
    # that took d seconds, the next waits d * (1 - busy) / busy), so a fast collector cannot starve it.
    evaluate_on_readings: bool = True
    busy: float = Field(default=0.5, gt=0, le=1)
    # Where the lifecycle state, silences and the outbox live in Redis (several daemons: one prefix each).
    redis_prefix: str = Field(default="watchtower:alerting:", min_length=1)
    # After a start the history is empty: for this long a rule with no data keeps its alerts as they were
    # (skipped) instead of resolving them, so a restart neither resolves nor re-pages a firing alert.
    startup_grace: Duration = Field(default=60.0, ge=0)
    notifiers: dict[str, NotifierConfig] = Field(default_factory=dict)
    # Delivery (the dispatcher): how often the outbox is polled when nothing wakes it, the retry backoff
    # when a notifier gives no Retry-After, and when a message that keeps failing goes to the dead letters.
    poll_interval: Duration = Field(default=1.0, gt=0)
    backoff_base: Duration = Field(default=2.0, gt=0)
    backoff_cap: Duration = Field(default=300.0, gt=0)
    give_up_after: Duration = Field(default=24 * 3600.0, gt=0)

    @field_validator("rules")
    @classmethod
    def _some_rules(cls, v: tuple[Path, ...]) -> tuple[Path, ...]:
        if not v:
            raise ValueError(
                "list at least one rule file or directory, e.g. [alerts/], or set enabled: false"
            )
        return v

    @field_validator("notifiers")
    @classmethod
    def _names(cls, v: dict[str, NotifierConfig]) -> dict[str, NotifierConfig]:
        for name in v:
            # The name is part of Redis keys and metric labels.
            if not name or not all(c.isalnum() or c in "-_." for c in name):
                raise ValueError(f"notifier name {name!r}: use letters, digits, '-', '_' or '.'")
        return v
