"""The notifier seam: every notifier is a Notifier; backoff stays in its bounds; redaction is total."""

from __future__ import annotations

import random

import pytest
from slack_fake import TOKEN

from watchtower.notify.base import Notifier, backoff, redact
from watchtower.notify.memory import MemoryNotifier
from watchtower.notify.slack import SlackConfig, SlackNotifier
from watchtower.notify.webhook import WebhookConfig, WebhookNotifier


def test_every_notifier_fits_the_protocol() -> None:
    for n in (
        MemoryNotifier(),
        SlackNotifier(SlackConfig(token=TOKEN, channel="C1")),
        SlackNotifier(SlackConfig(mode="webhook", webhook_url="https://hooks.slack.com/services/x")),
        WebhookNotifier(WebhookConfig(url="https://example.com/hook")),
    ):
        assert isinstance(n, Notifier)
        n.close()


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (30, 10)])
def test_backoff_is_between_half_and_all_of_the_capped_exponential(attempt: int, ceiling: float) -> None:
    rng = random.Random(attempt)
    waits = [backoff(attempt, base=1, cap=10, rng=rng) for _ in range(200)]
    assert all(ceiling / 2 <= w <= ceiling for w in waits)
    assert len(set(waits)) > 1  # jittered


def test_redact_longest_first() -> None:
    url = "https://hooks.slack.com/services/T/B/xyz"
    assert redact(f"failed {url} and services/T/B/xyz", (url, "services/T/B/xyz", "")) == "failed *** and ***"
