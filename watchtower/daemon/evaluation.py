"""The daemon's alerting loop: rules over the history, the lifecycle step, one Redis commit, then delivery.

One thread of its own runs a cycle on two triggers (`eval_schedule`): every `interval` (the timer: the
lifecycle step, so `for`, `keep_firing_for`, group and repeat intervals move with time, and every rule no
reading ran within the last interval, so no-data and staleness do too), and as soon as a
collector publishes a reading on the `ReadingSignal` (only the rules that read that collector's metrics;
the others keep their last results; a burst of readings is one cycle, and the cycles that run rules take
at most `busy` of the thread's CPU time; a tick inside that pause only steps the lifecycle and leaves its
stale rules to the next cycle that runs rules, so a saturated budget starves no rule). A cycle:

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
from typing import Any

from watchtower.alerting.lifecycle import LifecycleState, step
from watchtower.alerting.model import Alert, RuleResult
from watchtower.alerting.store import AlertStore
from watchtower.core.health import EvaluationHealth
from watchtower.core.history import History
from watchtower.core.leader import AlwaysLeader, LeaderGate
from watchtower.core.signal import ReadingSignal
from watchtower.daemon.eval_schedule import next_tick, owes, plan, reading_gap
from watchtower.notify.dispatcher import Dispatcher
from watchtower.rules.config import RuleSet, evaluate_all
from watchtower.rules.reads import affected_rules, metrics_read
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
        readings: ReadingSignal | None = None,
        on_readings: bool = True,
        busy: float = 0.5,
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
        self.readings = readings
        self.on_readings = on_readings  # whether the daemon should hand it its ReadingSignal
        self.busy = busy
        reading_gap(0.0, busy)  # validates busy
        self._reads = [metrics_read(r) for r in ruleset.rules]
        self._results: dict[str, list[RuleResult]] = {}  # rule -> its last results (kept when it did not run)
        self._failed: dict[str, str] = {}  # rule -> error, as of the rule's last run
        self._last_run: dict[str, float] = {}  # rule -> monotonic time of its last committed run
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------ start / stop

    def listen(self, readings: ReadingSignal) -> None:
        """Evaluate on the readings published there (call before `start`)."""
        self.readings = readings

    def start(self) -> AlertEvaluator:
        """Start delivery, then the evaluation thread (first cycle at once); returns at once."""
        if self._thread is not None:
            return self
        if self.dispatcher is not None:
            self.dispatcher.start()
        self._started_at = self.clock()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="watchtower-alert-evaluation", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop evaluating (waits for a running cycle), flush the outbox once more, close the store."""
        if self._thread is not None:
            self._stop.set()
            if self.readings is not None:
                self.readings.poke()
            self._thread.join()
            self._thread = None
        if self.dispatcher is not None:
            self.dispatcher.stop()
        self.store.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._run_loop()
            except Exception:  # a bug here must not end alerting silently: log it, start the loop over
                log.exception("alert evaluation loop failed, restarting it")
                self._stop.wait(self.interval)

    def _run_loop(self) -> None:
        due = time.monotonic()  # the timer's next tick: the first cycle runs at once
        ready_at = due  # a cycle that runs rules may start from here on (the busy bound)
        owed = False  # a tick inside the busy pause could not run the stale rules: the next cycle does
        pending: dict[str, float] = {}
        while not self._stop.is_set():
            now = time.monotonic()
            p = plan(now, next_tick=due, pending=bool(pending), ready_at=ready_at, owed=owed)
            if p.action == "wait":
                if self.readings is None:
                    self._stop.wait(p.wait)
                else:
                    for name, at in self.readings.wait(p.wait).items():
                        pending[name] = max(at, pending.get(name, at))
                continue
            owed = owes(p, owed)
            if p.action == "timer":
                if self.readings is not None:
                    for name, at in self.readings.take().items():
                        pending[name] = max(at, pending.get(name, at))
                # Within the busy budget the timer's cycle runs rules: the stale ones and those of the
                # readings waiting (they ride along). Past it, the timer only steps the lifecycle (`for`,
                # group timers) on the last results, the readings wait for the budget, and the stale
                # rules are owed to the next cycle that runs rules.
                fresh = set(pending) if p.rules else set()
                if p.rules:
                    pending = {}
                cpu = time.thread_time()
                self.run_once(fresh, timer=True, rules=p.rules)
                cpu = time.thread_time() - cpu
                due, missed = next_tick(due, time.monotonic(), self.interval)
                if missed:
                    self.health = replace(self.health, overruns=self.health.overruns + missed)
                if not p.rules:
                    continue  # a step alone does not move the budget
            else:
                # The readings' rules, and the stale ones a step-only tick owed (with no reading waiting,
                # that is the tick's own cycle, late by the budget).
                fresh, pending = set(pending), {}
                cpu = time.thread_time()
                self.run_once(fresh, timer=not fresh, stale=p.stale)
                cpu = time.thread_time() - cpu
            # The budget bounds the CPU the rules take from the collectors, not the wall time: a cycle that
            # waited on a hung Redis (seconds of socket timeout) must not hold back the one after it resumes.
            ready_at = time.monotonic() + reading_gap(cpu, self.busy)

    # --------------------------------------------------------------------------------- a cycle

    def run_once(
        self,
        fresh: set[str] | None = None,
        *,
        timer: bool | None = None,
        rules: bool = True,
        stale: bool = False,
    ) -> bool:
        """One evaluation cycle. Never raises; returns whether it committed.

        `fresh`: collectors with new readings; the rules reading their metrics run. `timer` (the default
        when nothing is fresh): a timer cycle, which steps the lifecycle whether or not a rule runs and
        also runs every rule no reading ran within the last interval (the stale rules). `stale`: those
        rules in a reading-driven cycle too (owed by a tick past the budget). `rules=False`: no rule runs,
        the lifecycle steps on the last results (the timer past the busy budget).
        """
        timer = fresh is None if timer is None else timer
        with self._lock:
            now = self.clock()
            started = time.monotonic()
            error: Exception | None = None
            try:
                self._cycle(now, fresh or set(), timer, rules, stale or timer)
            except Exception as exc:  # noqa: BLE001 - Redis away, say: the next cycle tries again
                error = exc
            duration = time.monotonic() - started
            before = self.health
            h = replace(before.observe(duration), cycles=before.cycles + 1)
            if not timer:
                h = replace(h, reading_cycles=h.reading_cycles + 1)
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

    def _rules_for(self, fresh: set[str], stale: bool) -> list:
        rules = self.ruleset.rules
        chosen: set[int] = set()
        if fresh:
            snap = self.history.snapshot().readings
            metrics = frozenset(s.metric for c in fresh if c in snap for s in snap[c].samples)
            chosen.update(affected_rules(self._reads, metrics))
        if stale:
            # Every rule no reading ran within the last interval (the lifecycle step moves `for`,
            # keep_firing_for and the group timers whether or not a rule runs). A rule its readings
            # keep running is not evaluated a second time per interval.
            since = time.monotonic() - self.interval
            chosen.update(i for i, r in enumerate(rules) if self._last_run.get(r.name, float("-inf")) < since)
        return [rules[i] for i in sorted(chosen)]

    def _cycle(
        self, now: float, fresh: set[str], timer: bool, rules: bool = True, stale: bool = False
    ) -> None:
        token = self.gate.holds()
        if token is None:
            self._state = None  # the leader moves the state on: reload it when this daemon leads
            return
        if self._state is None:
            raw = self.store.load_state()
            self._state = LifecycleState() if raw is None else self._restore(raw)
            log.info("alert state restored", extra={"alerts": len(self._state.alerts)})
        run = self._rules_for(fresh, stale) if rules else []
        if not run and not timer:
            return
        ran_at = time.monotonic()
        view = self._index.view(self.history.all()) if run else []
        new, new_failed = evaluate_all(run, view, now)
        # The rules that did not run keep their last results (and their failing status).
        ran = {r.name for r in run}
        fresh_results: dict[str, list[RuleResult]] = {name: [] for name in ran - set(new_failed)}
        for r in new:
            fresh_results.setdefault(r.rule, []).append(r)
        cached = {**{k: v for k, v in self._results.items() if k not in ran}, **fresh_results}
        failed = {**{k: v for k, v in self._failed.items() if k not in ran}, **new_failed}
        results = [r for name in cached for r in cached[name]]
        self.rule_errors.update(new_failed.keys())  # evaluations in which the rule raised
        self._note_rule_errors(failed)
        # A rule that never ran (the first cycles failed before it) must not read as "not breaching".
        skipped = set(failed) | ({rule.name for rule in self.ruleset.rules} - set(cached))
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
        self._results, self._failed = cached, failed
        self._last_run.update((r.name, ran_at) for r in run)
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
                "reading_cycles": h.reading_cycles,
                "readings": self.readings.published if self.readings is not None else 0,
                "last_success_at": h.last_success_at,
                "last_error": h.last_error,
                "last_duration_seconds": h.last_duration,
                "rules": len(self.ruleset.rules),
                "rule_files": list(self.ruleset.files),
                "failing_rules": dict(self._failing_rules),
            },
            "alerts": alerts,
        }
