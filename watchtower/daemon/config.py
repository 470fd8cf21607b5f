"""Configuration of `watchtower run`: the `daemon:` section (HTTP endpoint, history, tracing, collectors)
and the `alerting:` section (rule files, evaluation interval, notifiers, delivery).

The `daemon.collectors:` section is built from the collectors registry (one field per collector kind,
each kind's model living next to its code), and the notifier configs from the notifier registry, so
adding a collector or a notifier kind changes neither this file nor the root config. Validation only:
nothing here connects anywhere.

    alerting:
      rules: [alerts/]        # unset: the default rules packaged with watchtower (watchtower.rules.packaged)
      interval: 1s
      notifiers:
        slack-oncall: {kind: slack, token: xoxb-..., channel: C0DEFAULT}
        audit:        {kind: webhook, url: https://example.com/hook}
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from watchtower.collectors.registry import CollectorsConfig
from watchtower.core.units import Duration
from watchtower.notify.registry import NotifierConfig


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpConfig(_Model):
    """The one HTTP server: /metrics, /healthz, /api/v1/status. Loopback unless you say otherwise."""

    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535, description="0 picks a free port")


class DaemonConfig(_Model):
    http: HttpConfig = Field(default_factory=HttpConfig)
    history_size: int = Field(default=360, ge=1, description="readings kept per collector")
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces"
    )
    service_name: str = "watchtower"
    collectors: CollectorsConfig = Field(default_factory=CollectorsConfig)


class AlertingConfig(_Model):
    enabled: bool = True
    # Rule files or directories of *.yaml rule files (not recursive); every rule name must be unique.
    # Not set: the default rules shipped inside the package (watchtower.rules.packaged); a list replaces them.
    rules: tuple[Path, ...] | None = None
    # How often the rules are evaluated over the history. With collectors at 1-10 s, 1 s keeps detection
    # within one collection cycle of the data; an evaluation of the default rules costs milliseconds.
    interval: Duration = Field(default=1.0, gt=0)
    # Besides the timer, a collector's new reading starts an evaluation of the rules that read its metrics
    # at once; those reading-driven evaluations take at most this share of the evaluator's CPU time (after one
    # that used d CPU seconds, the next waits d * (1 - busy) / busy), so a fast collector cannot starve it.
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
    def _some_rules(cls, v: tuple[Path, ...] | None) -> tuple[Path, ...] | None:
        if v is not None and not v:
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
