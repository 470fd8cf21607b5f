"""The dispatcher over the real Redis outbox, with the in-memory notifier as the destination."""

from __future__ import annotations

import logging

import pytest
import redis
from alerting_samples import T0, note

from watchtower.alerting.model import DeliveryResult, NotificationKind
from watchtower.alerting.store import AlertStore
from watchtower.notify.base import failed, retry
from watchtower.notify.dispatcher import Dispatcher
from watchtower.notify.memory import MemoryNotifier

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(redis_client: redis.Redis) -> AlertStore:
    return AlertStore(redis_client, sinks=("mem",))


def make(
    store: AlertStore, clock: Clock, mem: MemoryNotifier | None = None, **kw
) -> tuple[Dispatcher, MemoryNotifier]:
    mem = mem or MemoryNotifier("mem")
    return Dispatcher(store, {"mem": mem}, clock=clock, **kw), mem


def test_delivers_in_order_per_group_and_threads(store: AlertStore) -> None:
    clock = Clock()
    d, mem = make(store, clock)
    fire, upd, res = (
        note(group_key="g"),
        note(NotificationKind.UPDATE, "g"),
        note(NotificationKind.RESOLVED, "g"),
    )
    store.commit({}, [fire, upd, res], now=clock.t)
    assert d.run_once() == 3
    assert mem.keys() == [fire.idempotency_key, upd.idempotency_key, res.idempotency_key]
    assert {x.thread for x in mem.delivered} == {"t1"}
    assert store.pending_count() == 0


def test_retry_waits_retry_after_without_blocking_other_groups(store: AlertStore) -> None:
    clock = Clock()
    d, mem = make(store, clock)
    a, b = note(group_key="a"), note(group_key="b")
    store.commit({}, [a, b], now=clock.t)
    mem.fail_next(retry("ratelimited", retry_after=30))
    assert d.run_once() == 1  # "a" was rate limited, "b" went out
    assert mem.keys() == [b.idempotency_key]
    clock.t += 29
    assert d.run_once() == 0
    clock.t += 1
    assert d.run_once() == 1
    assert mem.keys() == [b.idempotency_key, a.idempotency_key]
    assert mem.delivered[-1].attempt == 2  # the notifier is told an earlier try may have landed


def test_retry_without_retry_after_backs_off_exponentially(store: AlertStore) -> None:
    clock = Clock()
    d, mem = make(store, clock, backoff_base=2, backoff_cap=60)
    store.commit({}, [note(group_key="a")], now=clock.t)
    waits = []
    for _ in range(6):
        mem.fail_next(retry("500"))
        d.run_once()
        nxt = store.next_due_at()
        waits.append(nxt - clock.t)
        clock.t = nxt
    for attempt, w in enumerate(waits, start=1):
        ceiling = min(60, 2 * 2 ** (attempt - 1))
        assert ceiling / 2 <= w <= ceiling
    d.run_once()
    assert len(mem.delivered) == 1


def test_failed_goes_to_dead_letter_and_the_queue_goes_on(store: AlertStore, caplog) -> None:
    clock = Clock()
    d, mem = make(store, clock)
    fire, res = note(group_key="g"), note(NotificationKind.RESOLVED, "g")
    store.commit({}, [fire, res], now=clock.t)
    mem.fail_next(failed("channel_not_found"))
    with caplog.at_level(logging.ERROR):
        d.run_once()
    [dead] = store.dead_letters()
    assert dead.item.notification == fire and "channel_not_found" in dead.reason
    assert mem.keys() == [res.idempotency_key]
    assert d.counts["dead_lettered"] == 1 and d.counts["delivered"] == 1


def test_gives_up_on_endless_retries(store: AlertStore) -> None:
    clock = Clock()
    d, mem = make(store, clock, give_up_after=3600)
    store.commit({}, [note(group_key="g")], now=clock.t)
    mem.fail_next(*[retry("503", retry_after=600)] * 10)
    for _ in range(7):
        d.run_once()
        clock.t += 600
    [dead] = store.dead_letters()
    assert dead.reason.startswith("gave up after 7 attempts")
    assert store.pending_count() == 0


def test_a_notifier_that_raises_is_retried_and_does_not_stop_the_others(redis_client: redis.Redis) -> None:
    class Broken:
        name = "broken"

        def send(self, notification, thread_ref, attempt=1) -> DeliveryResult:
            raise RuntimeError("bug")

        def close(self) -> None:
            raise RuntimeError("bug on close too")

    store = AlertStore(redis_client, sinks=("broken", "mem"))
    mem = MemoryNotifier("mem")
    d = Dispatcher(store, {"broken": Broken(), "mem": mem}, clock=Clock())
    store.commit({}, [note(group_key="g")], now=T0)
    assert d.run_once() == 1
    assert len(mem.delivered) == 1 and d.counts["broken.errors"] == 1
    assert store.head("broken", "g").last_error == "notifier raised RuntimeError"
    d.stop()  # close() raising is logged, not raised


def test_restart_delivers_pending_resolve_once_and_never_pages_again(
    redis_url: str, redis_client: redis.Redis
) -> None:
    clock = Clock()
    first = AlertStore.from_url(redis_url, sinks=("mem",))
    mem = MemoryNotifier("mem")
    d1 = Dispatcher(first, {"mem": mem}, clock=clock)
    fire = note(group_key="g")
    first.commit({"g": "firing, notified"}, [fire], now=clock.t)
    d1.run_once()
    # The resolve is committed, then the daemon dies before delivering it.
    res = note(NotificationKind.RESOLVED, "g")
    clock.t += 60
    first.commit({"g": "resolved, notified"}, [res], now=clock.t)
    first.close()
    del d1

    # A new process: same Redis, same destination, fresh objects.
    second = AlertStore.from_url(redis_url, sinks=("mem",))
    assert second.load_state() == {"g": "resolved, notified"}  # the lifecycle restarts from here: no new page
    d2 = Dispatcher(second, {"mem": mem}, clock=clock)
    d2.run_once()
    d2.run_once()
    assert mem.keys() == [fire.idempotency_key, res.idempotency_key]
    assert mem.delivered[1].thread == mem.delivered[0].thread  # the resolve lands in the incident's thread
    assert second.pending_count() == 0
    second.close()


def test_crash_mid_send_is_redelivered_with_attempt_count(store: AlertStore) -> None:
    clock = Clock()
    store.commit({}, [note(group_key="g")], now=clock.t)
    store.start_attempt(store.head("mem", "g"))  # a dispatcher started sending, then died
    d, mem = make(store, clock)
    d.run_once()
    assert mem.delivered[0].attempt == 2


def test_background_loop_delivers_and_stops_promptly(store: AlertStore) -> None:
    import time

    d, mem = make(store, time.time, poll_interval=5)
    d.start()
    store.commit({}, [note(group_key="g")])
    d.wake()
    deadline = time.time() + 5
    while not mem.delivered and time.time() < deadline:
        time.sleep(0.01)
    started = time.time()
    d.stop()
    assert len(mem.delivered) == 1 and time.time() - started < 1


def test_a_woken_dispatcher_delivers_each_commit_without_waiting_for_a_poll(store: AlertStore) -> None:
    """poll_interval is a minute: every delivery below must come from wake(), none from a poll."""
    import time

    mem = MemoryNotifier("mem")
    d = Dispatcher(store, {"mem": mem}, poll_interval=60.0).start()
    try:
        for i in range(20):
            n = note(group_key=f"wake-{i}")
            store.commit({}, [n], now=time.time())
            d.wake()
            deadline = time.monotonic() + 10.0
            while n.idempotency_key not in mem.keys():
                assert time.monotonic() < deadline, f"commit {i} was not delivered after wake()"
                time.sleep(0.005)
    finally:
        d.stop()
    assert len(mem.keys()) == 20
