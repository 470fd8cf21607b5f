"""The notifier coordinator: drains the Redis outbox into the notifiers, in order per incident.

In Burrow's manner the coordinator owns delivery policy, the notifiers only talk to their destination:
- one queue per (notifier, incident): messages of an incident go out in the order they were made, and
  a queue waiting on a retry never holds up another incident or another notifier;
- an item leaves its queue only once DELIVERED (with the thread ref, in the same Redis step), or as a
  dead letter with the reason: FAILED at once, RETRY once `give_up_after` has passed since it was queued;
- RETRY waits `retry_after` when the notifier says so, else an exponential backoff with jitter;
- the attempt count is saved before each send, so after a crash the notifier knows the item may have
  landed and checks before posting again (no double page);
- a notifier that raises is logged and counted, its item retried; the loop goes on.
Logging is per change (a notifier starts or stops failing), not per retry.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace

from watchtower.alerting.model import DeliveryResult, DeliveryStatus
from watchtower.alerting.store import AlertStore, OutboxItem
from watchtower.core.leader import AlwaysLeader, LeaderGate
from watchtower.notify.base import Notifier, backoff, retry

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        store: AlertStore,
        notifiers: Mapping[str, Notifier],
        *,
        poll_interval: float = 1.0,
        backoff_base: float = 2.0,
        backoff_cap: float = 300.0,
        give_up_after: float = 24 * 3600.0,
        max_per_queue: int = 20,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        gate: LeaderGate | None = None,
    ) -> None:
        missing = set(store.sinks) - set(notifiers)
        if missing:
            raise ValueError(f"the store queues for notifiers that are not configured: {sorted(missing)}")
        self.store = store
        self.notifiers = dict(notifiers)
        self.poll_interval = poll_interval
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.give_up_after = give_up_after
        self.max_per_queue = max_per_queue
        self.clock = clock
        self.rng = rng or random.Random()
        # Several daemons: only the lease holder sends, and its claims carry the fencing token.
        self.gate: LeaderGate = gate or AlwaysLeader()
        self._fenced = gate is not None and not isinstance(gate, AlwaysLeader)
        self.counts: Counter[str] = (
            Counter()
        )  # delivered, retried, failed, dead_lettered, errors (per sink too)
        self._failing: set[str] = set()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------ start / stop

    def start(self) -> Dispatcher:
        """Start the delivery loop in a thread and return at once."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="watchtower-dispatcher", daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        """Deliver now rather than at the next poll (call after `store.commit`): the evaluator does, so
        a committed notification goes out at once and `poll_interval` only paces retries and queues
        another process committed."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop, try once more what is due, and close the notifiers."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        try:
            self.run_once()
        except Exception:
            log.exception("final outbox flush failed")
        for name, notifier in self.notifiers.items():
            try:
                notifier.close()
            except Exception:
                log.exception("notifier close failed", extra={"notifier": name})

    def _loop(self) -> None:
        while not self._stop.is_set():
            # Cleared *before* the pass: a wake() that lands during the pass (or just after it) makes the
            # next wait return at once. Clearing after the wait could swallow it, leaving a queued
            # notification to the next poll.
            self._wake.clear()
            try:
                self.run_once()
            except Exception:  # Redis down, say: keep the loop, try again next poll
                self.counts["errors"] += 1
                log.exception("outbox pass failed")
            self._wake.wait(self._sleep_time())

    def _sleep_time(self) -> float:
        try:
            nxt = self.store.next_due_at()
        except Exception:
            return self.poll_interval
        if nxt is None:
            return self.poll_interval
        return max(0.0, min(self.poll_interval, nxt - self.clock()))

    # ------------------------------------------------------------------------------- delivery

    def run_once(self) -> int:
        """Deliver what is due now; returns how many items were delivered. Safe to call from tests."""
        done = 0
        if self.gate.holds() is None:
            return 0  # a follower: the leader delivers
        for sink, group_key in self.store.due(self.clock()):
            notifier = self.notifiers.get(sink)
            if notifier is None:  # a queue left by a notifier since removed from the config
                continue
            done += self._drain(sink, group_key, notifier)
        return done

    def _drain(self, sink: str, group_key: str, notifier: Notifier) -> int:
        done = 0
        for _ in range(self.max_per_queue):
            item = self.store.head(sink, group_key)
            if item is None:
                break
            token = self.gate.holds()
            if token is None:
                break
            claimed = self.store.claim(item, token if self._fenced else None)
            if claimed is None:
                self._count(sink, "fenced")
                log.warning("outbox claim refused: another daemon leads now", extra={"notifier": sink})
                break
            item = claimed
            result = self._send(notifier, item)
            now = self.clock()
            if result.status is DeliveryStatus.DELIVERED:
                self.store.ack(item, result.thread_ref, now)
                self._count(sink, "delivered")
                self._healthy(sink)
                done += 1
                continue
            if result.status is DeliveryStatus.FAILED:
                self._dead(item, f"failed: {result.detail}", now)
                continue
            if now - item.enqueued_at >= self.give_up_after:
                self._dead(item, f"gave up after {item.attempts} attempts: {result.detail}", now)
                continue
            wait = result.retry_after if result.retry_after is not None else self._backoff(item.attempts)
            self.store.update_head(replace(item, last_error=result.detail), due_at=now + wait)
            self._count(sink, "retried")
            self._failing_now(sink, result.detail)
            break
        return done

    def _send(self, notifier: Notifier, item: OutboxItem) -> DeliveryResult:
        thread_ref = self.store.thread_ref(item.sink, item.notification.group_key)
        try:
            return notifier.send(item.notification, thread_ref, attempt=item.attempts)
        except Exception as exc:  # a plugin bug must not stop delivery to the others
            self._count(item.sink, "errors")
            log.exception("notifier raised", extra={"notifier": item.sink})
            return retry(f"notifier raised {type(exc).__name__}")

    def _backoff(self, attempts: int) -> float:
        return backoff(attempts, self.backoff_base, self.backoff_cap, self.rng)

    def _dead(self, item: OutboxItem, reason: str, now: float) -> None:
        self.store.dead_letter(item, reason, now)
        self._count(item.sink, "dead_lettered")
        log.error(
            "notification dropped to the dead-letter list",
            extra={
                "notifier": item.sink,
                "group": item.notification.group_key,
                "kind": item.notification.kind.value,
                "reason": reason,
            },
        )

    def _count(self, sink: str, what: str) -> None:
        self.counts[what] += 1
        self.counts[f"{sink}.{what}"] += 1

    def _failing_now(self, sink: str, detail: str) -> None:
        if sink not in self._failing:
            self._failing.add(sink)
            log.warning("notifier failing, will retry", extra={"notifier": sink, "detail": detail})

    def _healthy(self, sink: str) -> None:
        if sink in self._failing:
            self._failing.discard(sink)
            log.info("notifier recovered", extra={"notifier": sink})
