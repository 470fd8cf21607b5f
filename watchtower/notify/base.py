"""The notifier seam: how one message of an incident leaves watchtower.

A notifier only delivers. The lifecycle (pure) decides what to say and when; the outbox (Redis) keeps it
until it is delivered; the dispatcher decides when to try again. So a notifier holds no incident state:
everything it needs to thread a message is in the `thread_ref` the dispatcher hands back to it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from watchtower.alerting.model import DeliveryResult, DeliveryStatus, Notification

ThreadRef = Mapping[str, str]


@runtime_checkable
class Notifier(Protocol):
    """One destination (Slack, a webhook, memory for tests).

    `send` does I/O and may block, but only within the notifier's own timeouts and retry budget. It
    never raises for a delivery problem: transient ones (429, 5xx, network) return RETRY, with
    `retry_after` when the far side said how long to wait; permanent ones (bad token, unknown channel)
    return FAILED. An exception that escapes anyway is a bug; the dispatcher logs it, counts it and
    treats it as RETRY, so it never stops the daemon.

    `thread_ref` is what an earlier delivery of the same incident (`group_key`) returned, or empty for
    the first message. `attempt` counts deliveries of this very notification, across restarts: above 1,
    an earlier try may have landed, and a notifier that can look must check before posting again.

    `close()` releases clients; it must not raise.
    """

    name: str

    def send(self, notification: Notification, thread_ref: ThreadRef, attempt: int = 1) -> DeliveryResult: ...

    def close(self) -> None: ...


def delivered(thread_ref: ThreadRef | None = None, detail: str = "") -> DeliveryResult:
    return DeliveryResult(DeliveryStatus.DELIVERED, detail=detail, thread_ref=dict(thread_ref or {}))


def retry(detail: str, retry_after: float | None = None) -> DeliveryResult:
    return DeliveryResult(DeliveryStatus.RETRY, retry_after=retry_after, detail=detail)


def failed(detail: str) -> DeliveryResult:
    return DeliveryResult(DeliveryStatus.FAILED, detail=detail)


def backoff(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": between half and all of min(cap, base * 2**(attempt-1)).

    Half is kept so that a burst of retries never collapses to zero wait; the random half spreads them.
    """
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret (token, webhook URL, and the URL's path alone) replaced by `***`."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
