"""An in-memory notifier: a real plugin that keeps what it was sent, for tests and dry runs.

It behaves like a threaded chat: a FIRING opens a thread, later messages of the incident land in it.
Like Slack with idempotency metadata, it never keeps the same idempotency key twice. Outcomes can be
scripted (`fail_next`) to play a flaky or broken destination.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass

from watchtower.alerting.model import DeliveryResult, Notification, NotificationKind
from watchtower.notify.base import ThreadRef, delivered


@dataclass(frozen=True, slots=True)
class Delivered:
    notification: Notification
    thread: str
    attempt: int


class MemoryNotifier:
    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.delivered: list[Delivered] = []
        self.calls = 0
        self._script: deque[DeliveryResult] = deque()
        self._threads = itertools.count(1)
        self._lock = threading.Lock()

    def fail_next(self, *results: DeliveryResult) -> None:
        """Answer the next sends with these results instead of delivering (RETRY or FAILED)."""
        with self._lock:
            self._script.extend(results)

    def send(self, notification: Notification, thread_ref: ThreadRef, attempt: int = 1) -> DeliveryResult:
        with self._lock:
            self.calls += 1
            if self._script:
                return self._script.popleft()
            for d in self.delivered:
                if d.notification.idempotency_key == notification.idempotency_key:
                    return delivered({"thread": d.thread}, detail="already delivered")
            if notification.kind is NotificationKind.FIRING or "thread" not in thread_ref:
                thread = f"t{next(self._threads)}"
            else:
                thread = thread_ref["thread"]
            self.delivered.append(Delivered(notification, thread, attempt))
            return delivered({"thread": thread})

    def close(self) -> None:
        pass

    # What tests ask.
    def keys(self) -> list[str]:
        return [d.notification.idempotency_key for d in self.delivered]

    def thread_of(self, group_key: str) -> list[Delivered]:
        return [d for d in self.delivered if d.notification.group_key == group_key]
