"""Notifier kinds: a configured notifier (`alerting.notifiers.<name>`, with a `kind`) -> its plugin.

Building a notifier makes no connection; clients are created on the first send.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from watchtower.config.alerting import NotifierConfig
from watchtower.notify.base import Notifier
from watchtower.notify.memory import MemoryNotifier
from watchtower.notify.slack import SlackConfig, SlackNotifier
from watchtower.notify.webhook import WebhookConfig, WebhookNotifier


def _slack(name: str, cfg: Any) -> Notifier:
    return SlackNotifier(SlackConfig.model_validate(cfg.model_dump(exclude={"kind"})), name)


def _webhook(name: str, cfg: Any) -> Notifier:
    return WebhookNotifier(WebhookConfig.model_validate(cfg.model_dump(exclude={"kind"})), name)


KINDS: dict[str, Callable[[str, Any], Notifier]] = {
    "slack": _slack,
    "webhook": _webhook,
    "memory": lambda name, cfg: MemoryNotifier(name),
}


def build_notifiers(configs: Mapping[str, NotifierConfig]) -> dict[str, Notifier]:
    return {name: KINDS[cfg.kind](name, cfg) for name, cfg in configs.items()}
