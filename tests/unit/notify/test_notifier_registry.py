"""The `alerting.notifiers` config models come from the notifier registry, and build the registered plugin."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from watchtower.daemon.config import AlertingConfig
from watchtower.notify.memory import MemoryNotifier
from watchtower.notify.registry import REGISTRY, build_notifiers
from watchtower.notify.slack import SlackNotifier
from watchtower.notify.webhook import WebhookNotifier


@pytest.mark.parametrize(
    ("settings", "plugin"),
    [
        ({"kind": "slack", "token": "xoxb-1", "channel": "C1"}, SlackNotifier),
        ({"kind": "webhook", "url": "https://example.com/hook"}, WebhookNotifier),
        ({"kind": "memory"}, MemoryNotifier),
    ],
)
def test_each_registered_kind_validates_and_builds(settings: dict, plugin: type) -> None:
    cfg = AlertingConfig.model_validate({"notifiers": {"n1": settings}})
    assert type(cfg.notifiers["n1"]) is next(k.config for k in REGISTRY if k.name == settings["kind"])
    built = build_notifiers(cfg.notifiers)
    assert isinstance(built["n1"], plugin) and built["n1"].name == "n1"


def test_an_unknown_kind_lists_the_registered_ones() -> None:
    with pytest.raises(ValidationError) as info:
        AlertingConfig.model_validate({"notifiers": {"n1": {"kind": "pager"}}})
    text = str(info.value)
    assert all(f"'{k.name}'" in text for k in REGISTRY), text


def test_the_slack_token_stays_secret_in_the_config() -> None:
    cfg = AlertingConfig.model_validate(
        {"notifiers": {"s": {"kind": "slack", "token": "xoxb-secret", "channel": "C1"}}}
    )
    assert "xoxb-secret" not in repr(cfg) and "xoxb-secret" not in str(cfg.model_dump())
