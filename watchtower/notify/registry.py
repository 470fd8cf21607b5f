"""Notifier kinds: a configured notifier (`alerting.notifiers.<name>`, with a `kind`) -> its plugin.

Each kind registers here its config model (the notifier's own settings, `SlackConfig`, `WebhookConfig`,
plus the `kind` tag) and its factory; `NotifierConfig` (the tagged union the `alerting:` section
validates against) is built from this list. Building a notifier makes no connection; clients are
created on the first send.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from watchtower.notify.base import Notifier
from watchtower.notify.memory import MemoryNotifier
from watchtower.notify.slack import SlackConfig, SlackNotifier
from watchtower.notify.webhook import WebhookConfig, WebhookNotifier


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


@dataclass(frozen=True)
class NotifierKind:
    name: str
    config: type[BaseModel]  # with a `kind: Literal[name]` field
    build: Callable[[str, Any], Notifier]


def _slack(name: str, cfg: Any) -> Notifier:
    return SlackNotifier(SlackConfig.model_validate(cfg.model_dump(exclude={"kind"})), name)


def _webhook(name: str, cfg: Any) -> Notifier:
    return WebhookNotifier(WebhookConfig.model_validate(cfg.model_dump(exclude={"kind"})), name)


REGISTRY: tuple[NotifierKind, ...] = (
    NotifierKind("slack", SlackNotifierConfig, _slack),
    NotifierKind("webhook", WebhookNotifierConfig, _webhook),
    NotifierKind("memory", MemoryNotifierConfig, lambda name, cfg: MemoryNotifier(name)),
)
KINDS: dict[str, Callable[[str, Any], Notifier]] = {k.name: k.build for k in REGISTRY}

NotifierConfig = Annotated[Union[tuple(k.config for k in REGISTRY)], Field(discriminator="kind")]  # noqa: UP007


def build_notifiers(configs: Mapping[str, Any]) -> dict[str, Notifier]:
    return {name: KINDS[cfg.kind](name, cfg) for name, cfg in configs.items()}
