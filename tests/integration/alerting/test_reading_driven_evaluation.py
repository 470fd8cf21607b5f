"""Reading-driven evaluation over the real Redis store, with the in-memory notifier.

The evaluator's timer is slow here (30 s) wherever a test shows that a *reading* made it act: only a
published reading can explain a page within a few seconds. The guarantees the timer used to carry are
checked on the same loop: only the rules reading a fresh collector's metrics run (the others keep their
last results), `for` counts from the first breaching reading, group_wait still waits, silences mute.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from watchtower.alerting.silences import Silence, parse_matchers
from watchtower.alerting.store import AlertStore
from watchtower.core.history import History
from watchtower.core.signal import ReadingSignal
from watchtower.core.types import Reading, Sample
from watchtower.daemon.evaluation import AlertEvaluator
from watchtower.notify.dispatcher import Dispatcher
from watchtower.notify.memory import MemoryNotifier
from watchtower.rules.config import load_rules

pytestmark = pytest.mark.integration


class TimedMemory(MemoryNotifier):
    def __init__(self) -> None:
        super().__init__("mem")
        self.arrivals: list[tuple[float, str, str]] = []  # (time, kind, rule)

    def send(self, notification, thread_ref, attempt=1):  # type: ignore[no-untyped-def]
        at = time.time()
        for a in notification.alerts:
            self.arrivals.append((at, notification.kind.value, a.rule))
        return super().send(notification, thread_ref, attempt)

    def first(self, rule: str, kind: str = "firing") -> float | None:
        return next((at for at, k, r in list(self.arrivals) if r == rule and k == kind), None)


RULES = """
routes:
  default: {group_by: [rule], group_wait: 0s, group_interval: 0s}
  waiting: {group_by: [rule], group_wait: 1500ms, group_interval: 0s}
rules:
  - {name: lag, kind: threshold, selector: watchtower_consumer_lag_messages, bound: 10, severity: page}
  - {name: other, kind: threshold, selector: watchtower_dlq_messages, bound: 10, severity: page}
  - {name: slow, kind: threshold, selector: watchtower_canary_pending, bound: 10, for: 1500ms, severity: page}
  - {name: grouped, kind: threshold, selector: watchtower_checkpoint_duration_seconds, bound: 10, route: waiting, severity: page}
  - {name: muted, kind: threshold, selector: watchtower_consumer_lag_messages, bound: 5, severity: page}
"""


def _store(redis_url: str, prefix: str) -> AlertStore:
    """A store of its own in the shared Redis, delivering to the in-memory sink `mem`."""
    return AlertStore(
        redis.Redis.from_url(redis_url), prefix=f"{prefix}-{uuid.uuid4().hex[:8]}:", sinks=("mem",)
    )


def _evaluator(cls, rules: Path, history, store, mem, signal, interval: float, **kw):  # type: ignore[no-untyped-def]
    """An evaluator (`cls`: AlertEvaluator or a subclass) on the reading signal, paging into `mem` at once
    (the dispatcher's 60 s poll never fires: only the evaluator's wake delivers)."""
    dispatcher = Dispatcher(store, {"mem": mem}, poll_interval=60.0)
    return cls(
        load_rules(rules),
        history,
        store,
        dispatcher,
        interval=interval,
        startup_grace=0,
        readings=signal,
        **kw,
    )


@pytest.fixture
def loop(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., tuple]]:
    started: list[AlertEvaluator] = []

    def make(interval: float = 30.0, silence: str | None = None) -> tuple:
        (tmp_path / "rules.yaml").write_text(RULES)
        history, signal = History(100), ReadingSignal()
        store = _store(redis_url, "wt-rd")
        if silence:
            now = time.time()
            store.add_silence(Silence(parse_matchers(silence), now - 1, now + 3600))
        mem = TimedMemory()
        ev = _evaluator(AlertEvaluator, tmp_path / "rules.yaml", history, store, mem, signal, interval)
        ev.start()
        started.append(ev)
        await_(lambda: ev.health.cycles >= 1, "the first (timer) cycle")

        def publish(collector: str, announce: bool = True, **values: float) -> float:
            at = time.time()
            history.append(Reading(collector, at, tuple(Sample(m, (), v) for m, v in values.items())))
            if announce:
                signal.publish(collector, at)
            return at

        return ev, mem, publish

    yield make
    for ev in started:
        ev.stop()


def await_(check: Callable[[], object], what: str, timeout: float = 10.0) -> object:
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.01)
    return result


def test_a_reading_pages_at_once_and_only_its_rules_run(loop) -> None:
    ev, mem, publish = loop(interval=30.0)
    # The other collector breaches, but nobody announces it: its rule does not run (keeps "not breaching").
    publish("b", announce=False, watchtower_dlq_messages=99)
    at = publish("a", watchtower_consumer_lag_messages=11)
    await_(lambda: mem.first("lag"), "the lag rule's page")
    assert mem.first("lag") - at < 3.0  # a reading, not the 30 s timer
    assert mem.first("other") is None
    assert ev.health.reading_cycles >= 1
    # Now its reading is announced: it runs and pages.
    publish("b", watchtower_dlq_messages=99)
    await_(lambda: mem.first("other"), "the other rule's page")


def test_a_burst_of_readings_during_an_evaluation_costs_one_more(loop) -> None:
    ev, mem, publish = loop(interval=30.0)
    before = ev.health.reading_cycles
    # Hold the evaluator's cycle lock: the loop takes the first reading and blocks inside its evaluation,
    # so the burst arrives while that evaluation runs.
    with ev._lock:
        publish("a", watchtower_consumer_lag_messages=1)
        await_(lambda: not ev.readings.pending(), "the loop taking the first reading")
        for v in range(49):
            publish("a", watchtower_consumer_lag_messages=float(v % 5))
        publish("a", watchtower_consumer_lag_messages=11)
        assert ev.health.reading_cycles == before  # nothing evaluated while the burst arrived
    await_(lambda: mem.first("lag"), "the page after the burst")
    # The blocked evaluation, then at most one for the burst of 50 (none when the loop, still waiting on
    # the budget when the first reading came, took the burst along into the evaluation it then started).
    assert 1 <= ev.health.reading_cycles - before <= 2


def test_for_counts_from_the_first_breaching_reading(loop) -> None:
    ev, mem, publish = loop(interval=0.25)
    first = publish("c", watchtower_canary_pending=11)
    stop = threading.Event()

    def keep_breaching() -> None:
        while not stop.wait(0.1):
            publish("c", watchtower_canary_pending=11)

    t = threading.Thread(target=keep_breaching)
    t.start()
    try:
        paged = await_(lambda: mem.first("slow"), "the slow rule's page")
    finally:
        stop.set()
        t.join()
    assert paged - first >= 1.5  # not before `for`
    assert paged - first < 1.5 + 2.0  # ...and not from a later reading's time


def test_group_wait_still_waits(loop) -> None:
    ev, mem, publish = loop(interval=0.25)
    first = publish("d", watchtower_checkpoint_duration_seconds=11)
    paged = await_(lambda: mem.first("grouped"), "the grouped rule's page")
    assert paged - first >= 1.5


def test_a_silenced_alert_does_not_page_on_readings(loop) -> None:
    ev, mem, publish = loop(interval=30.0, silence="rule=muted")
    publish("a", watchtower_consumer_lag_messages=11)  # breaches both `lag` (bound 10) and `muted` (bound 5)
    await_(lambda: mem.first("lag"), "the unsilenced page")
    assert mem.first("muted") is None
    assert any(a.rule == "muted" and a.state.value == "firing" for a in ev.active())


GROUPS = 20
SATURATED_RULES = """
routes:
  default: {group_by: [rule], group_wait: 0s, group_interval: 0s}
rules:
  - {name: quiet, kind: threshold, selector: watchtower_dlq_messages, bound: 10, stale_after: 2s, severity: page}
"""


def test_a_saturated_budget_starves_no_stale_rule_and_keeps_its_bound(redis_url: str, tmp_path: Path) -> None:
    """A fast collector keeps the busy budget saturated with a costly rule set; a second collector falls
    silent. Its rule, which no reading runs any more, still runs on the timer's behalf (ticks inside the
    busy pause owe it to the next cycle that runs rules), so its no-data alert rises; and the cycles that
    run rules stay within `busy` of the evaluator's CPU."""
    interval, busy, stale_after = 1.0, 0.25, 2.0
    # The costly rules: one per group and kind over the fast collector's partitions (every reading runs them).
    costly = "".join(
        f"  - {{name: g{g}-{k}, kind: threshold, selector: 'watchtower_consumer_lag_messages{{group=\"g{g}\"}}', "
        f"aggregate: {k}, by: [group], bound: 1e12, severity: page}}\n"
        for g in range(GROUPS)
        for k in ("max", "sum", "avg")
    )
    (tmp_path / "rules.yaml").write_text(SATURATED_RULES + costly)
    history, signal = History(60), ReadingSignal()
    store = _store(redis_url, "wt-sat")
    mem = TimedMemory()
    cycles: list[tuple[float, float, bool, bool, bool]] = []  # (start, cpu, timer, rules, stale)

    class Timed(AlertEvaluator):
        def run_once(self, fresh=None, *, timer=None, rules=True, stale=False):  # type: ignore[no-untyped-def]
            t0, c0 = time.monotonic(), time.thread_time()
            ok = super().run_once(fresh, timer=timer, rules=rules, stale=stale)
            cycles.append((t0, time.thread_time() - c0, bool(timer), rules, stale or bool(timer)))
            return ok

    ev = _evaluator(Timed, tmp_path / "rules.yaml", history, store, mem, signal, interval, busy=busy)
    lag = tuple(
        Sample("watchtower_consumer_lag_messages", (("group", f"g{g}"), ("partition", str(p))), float(p))
        for g in range(GROUPS)
        for p in range(50)
    )
    quiet_at = time.time()
    history.append(Reading("quiet", quiet_at, (Sample("watchtower_dlq_messages", (), 1.0),)))
    signal.publish("quiet", quiet_at)  # its last reading: the collector falls silent after it
    stop = threading.Event()
    published = [0]

    def fast() -> None:  # a reading every 5 ms: far faster than the budget lets the costly rules run
        while not stop.wait(0.005):
            at = time.time()
            history.append(Reading("fast", at, lag))
            signal.publish("fast", at)
            published[0] += 1

    publisher = threading.Thread(target=fast)
    began = time.monotonic()
    ev.start()
    publisher.start()
    try:
        raised = await_(lambda: mem.first("quiet:no-data"), "the silent collector's no-data alert", 30.0)
    finally:
        stop.set()
        publisher.join()
        span = time.monotonic() - began
        ev.stop()
    # The no-data alert rose within a few intervals of `stale_after`, with the budget saturated.
    assert raised - quiet_at < stale_after + 6 * interval
    steps = [c for c in cycles if not c[3]]
    with_rules = [c for c in cycles if c[3]]
    assert steps, "no tick fell inside the busy pause: the budget was never saturated"
    assert published[0] > 3 * len(with_rules)  # readings came far faster than rule-running cycles
    # The stale rules ran after the ticks that could not run them (not only when a tick ran rules).
    assert any(c[4] and not c[2] for c in with_rules)
    # The bound: the cycles that ran rules took about `busy` of the evaluator's CPU at most.
    share = sum(c[1] for c in with_rules) / span
    assert share <= busy + 0.1, f"rule-running cycles took {share:.0%} of the time (busy {busy:.0%})"
