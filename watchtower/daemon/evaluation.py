"""The daemon's alerting loop: rules over the history, the lifecycle step, one Redis commit, then delivery.

Every `interval` (one APScheduler job of its own, like a collector: max_instances=1, coalesce):

    restore the lifecycle state from the AlertStore (once; retried each cycle until Redis answers)
    results, errors = evaluate_all(rules, history, now)      pure; a raising rule is left out and named
    state, notes = step(state, results, now, config, silences=store.silences(now), skipped_rules=errors)
    store.commit(state, notes)                               state + outbox in one MULTI/EXEC
    dispatcher.wake()                                        delivery happens on the dispatcher's thread

With `ha:` (several daemons) a cycle runs only while the lease gate holds a token, and the commit carries
it (refused once a newer leader has written); a follower keeps no state and restores it when it leads.

The in-memory state is only ever the last committed one: a cycle whose commit fails leaves it as it was,
so the next cycle recomputes the same step (same idempotency keys) instead of skipping a message.

A rule that raises is logged when it starts and when it stops failing, counted per rule, and passed on as
skipped so its alerts keep their state. A cycle that fails as a whole (Redis away) is logged once per
change and counted; the next cycle tries again. After a start the history is empty, so for
`startup_grace` a rule that has no data at all is skipped too: a restart neither resolves a firing alert
nor, since the state is restored, pages it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from watchtower.alerting.lifecycle import LifecycleState, step
from watchtower.alerting.model import Alert
from watchtower.alerting.store import AlertStore
from watchtower.core.health import EvaluationHealth
from watchtower.core.history import History
from watchtower.core.leader import AlwaysLeader, LeaderGate
from watchtower.notify.dispatcher import Dispatcher
from watchtower.rules.config import RuleSet, evaluate_all
from watchtower.rules.series import HistoryIndex

log = logging.getLogger(__name__)

JOB_ID = "alert_evaluation"

class AlertEvaluator:
    def __init__(
        self,
        ruleset: RuleSet,
        history: History,
        store: AlertStore,
        dispatcher: Dispatcher | None = None,
        *,
        interval: float = 1.0,
        startup_grace: float = 60.0,
        clock: Callable[[], float] = time.time,
        gate: LeaderGate | None = None,
    ) -> None:
        self.ruleset = ruleset
        # Several daemons (ha.enabled): only the lease holder moves the alert state on and queues pages.
        self.gate: LeaderGate = gate or AlwaysLeader()
        self._fenced = gate is not None and not isinstance(gate, AlwaysLeader)
        self.lifecycle = ruleset.lifecycle_config()
        self.history = history
        self.store = store
        self.dispatcher = dispatcher
        self.interval = interval
        self.startup_grace = startup_grace
        self.clock = clock
        self.health = EvaluationHealth()
        self.rule_errors: Counter[str] = Counter()
        self._failing_rules: dict[str, str] = {}
        self._state: LifecycleState | None = None  # None until restored from the store
        self._index = HistoryIndex()
        self._started_at: float | None = None
        self._lock = threading.Lock()  # one cycle at a time, also when a test calls run_once directly
        self._scheduler: BackgroundScheduler | None = None

    # ------------------------------------------------------------------------------ start / stop

    def start(self) -> AlertEvaluator:
        """Start delivery, then the evaluation job (first cycle at once); returns at once."""
        if self._scheduler is not None:
            return self
        self._started_at = self.clock()
        if self.dispatcher is not None:
            self.dispatcher.start()  # delivers what a previous run left in the outbox
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
            timezone="UTC",
        )
        scheduler.add_listener(self._on_overrun, EVENT_JOB_MAX_INSTANCES)
        scheduler.add_job(
            self.run_once,
            IntervalTrigger(seconds=self.interval, timezone="UTC"),
            id=JOB_ID,
            name=JOB_ID,
            next_run_time=datetime.now(UTC),
        )
        self._scheduler = scheduler
        scheduler.start()
        return self

    def stop(self) -> None:
        """Stop evaluating (waits for a running cycle), flush the outbox once more, close the store."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        if self.dispatcher is not None:
            self.dispatcher.stop()
        self.store.close()

    def _on_overrun(self, event: JobExecutionEvent) -> None:
        self.health = replace(self.health, overruns=self.health.overruns + 1)

    # --------------------------------------------------------------------------------- a cycle

    def run_once(self) -> bool:
        """One evaluation cycle. Never raises; returns whether it committed."""
        with self._lock:
            now = self.clock()
            started = time.monotonic()
            error: Exception | None = None
            try:
                self._cycle(now)
            except Exception as exc:  # noqa: BLE001 - Redis away, say: the next cycle tries again
                error = exc
            duration = time.monotonic() - started
            before = self.health
            h = replace(before.observe(duration), cycles=before.cycles + 1)
            if error is None:
                h = replace(h, ok=True, last_success_at=self.clock())
            else:
                h = replace(h, ok=False, errors=h.errors + 1, last_error=f"{type(error).__name__}: {error}")
            self.health = h
        if h.ok != before.ok:
            if error is None:
                log.info("alert evaluation ok", extra={"after_errors": h.errors})
            else:
                log.warning("alert evaluation failing", extra={"error": h.last_error})
        return error is None

    def _cycle(self, now: float) -> None:
        token = self.gate.holds()
        if token is None:
            self._state = None  # the leader moves the state on: reload it when this daemon leads
            return
        if self._state is None:
            raw = self.store.load_state()
            self._state = LifecycleState() if raw is None else self._restore(raw)
            log.info("alert state restored", extra={"alerts": len(self._state.alerts)})
        view = self._index.view(self.history.all())
        results, failed = evaluate_all(self.ruleset.rules, view, now)
        self._note_rule_errors(failed)
        skipped = set(failed)
        if self._started_at is not None and now - self._started_at < self.startup_grace:
            with_data = {r.rule for r in results if not r.no_data}
            skipped |= {rule.name for rule in self.ruleset.rules} - with_data
            results = [r for r in results if r.rule not in skipped]
        state, notes = step(
            self._state,
            results,
            now,
            self.lifecycle,
            silences=self.store.silences(now),
            skipped_rules=frozenset(skipped),
        )
        queued = notes if self.store.sinks else []  # no notifier configured: state only
        self.store.commit(state.to_dict(), queued, now, token if self._fenced else None)
        self._state = state
        for n in notes:
            log.info(
                "alert notification",
                extra={
                    "kind": n.kind.value,
                    "group": n.group_key,
                    "alerts": len(n.alerts),
                    "queued": bool(queued),
                },
            )
        if queued and self.dispatcher is not None:
            self.dispatcher.wake()

    @staticmethod
    def _restore(raw: Any) -> LifecycleState:
        try:
            return LifecycleState.from_dict(raw)
        except (ValueError, KeyError, TypeError) as exc:
            # A state this version cannot read: starting empty may re-page, which beats never paging.
            log.error("stored alert state unreadable, starting empty", extra={"error": str(exc)})
            return LifecycleState()

    def _note_rule_errors(self, failed: dict[str, str]) -> None:
        for name, err in failed.items():
            self.rule_errors[name] += 1
            if name not in self._failing_rules:
                log.warning("rule failing, its alerts keep their state", extra={"rule": name, "error": err})
        for name in set(self._failing_rules) - set(failed):
            log.info("rule evaluates again", extra={"rule": name})
        self._failing_rules = dict(failed)

    # ------------------------------------------------------------------------------- readers

    def active(self) -> list[Alert]:
        """Pending and firing alerts as of the last committed cycle."""
        state = self._state
        return [] if state is None else state.active()

    def alerts_status(self) -> dict[str, Any]:
        """What /api/v1/alerts answers."""
        h = self.health
        alerts = [
            {
                "rule": a.rule,
                "labels": dict(a.labels),
                "state": a.state.value,
                "severity": a.severity.value,
                "value": a.value,
                "bound": a.bound,
                "since": a.active_since,
                "firing_since": a.firing_since,
                "summary": a.summary,
                "fingerprint": a.fingerprint,
            }
            for a in self.active()
        ]
        return {
            "at": self.clock(),
            "restored": self._state is not None,
            "evaluation": {
                "interval_seconds": self.interval,
                "ok": h.ok,
                "cycles": h.cycles,
                "errors": h.errors,
                "overruns": h.overruns,
                "last_success_at": h.last_success_at,
                "last_error": h.last_error,
                "last_duration_seconds": h.last_duration,
                "rules": len(self.ruleset.rules),
                "rule_files": list(self.ruleset.files),
                "failing_rules": dict(self._failing_rules),
            },
            "alerts": alerts,
        }
