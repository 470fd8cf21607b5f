"""The dispatcher behind a leader gate: a follower sends nothing, the leader's claims carry its fencing
token, and a deposed leader (older token than the outbox has seen) sends nothing even while it believes
it leads."""

from __future__ import annotations

import pytest
import redis
from alerting_samples import T0, note

from watchtower.alerting.store import AlertStore, StaleLeaderError
from watchtower.notify.dispatcher import Dispatcher
from watchtower.notify.memory import MemoryNotifier

pytestmark = pytest.mark.integration


class Gate:
    """A LeaderGate whose token the test sets (None: a follower)."""

    def __init__(self, token: int | None) -> None:
        self.token = token

    def holds(self) -> int | None:
        return self.token


@pytest.fixture
def store(redis_client: redis.Redis) -> AlertStore:
    return AlertStore(redis_client, sinks=("mem",))


def dispatcher(store: AlertStore, gate: Gate) -> tuple[Dispatcher, MemoryNotifier]:
    mem = MemoryNotifier("mem")
    return Dispatcher(store, {"mem": mem}, clock=lambda: T0, gate=gate), mem


def test_only_the_leader_sends_and_a_deposed_one_is_fenced(store: AlertStore) -> None:
    store.commit({}, [note(group_key="a"), note(group_key="b")], now=T0, token=1)
    follower, mem_f = dispatcher(store, Gate(None))
    assert follower.run_once() == 0 and mem_f.delivered == [] and store.pending_count() == 2

    old, mem_old = dispatcher(store, Gate(1))
    new, mem_new = dispatcher(store, Gate(2))
    store.commit({}, [note(group_key="c")], now=T0, token=2)  # the new leader wrote: fence = 2
    assert old.run_once() == 0  # still believes it leads (token 1): every claim refused
    assert mem_old.delivered == [] and old.counts["fenced"] >= 1
    assert new.run_once() == 3 and len(mem_new.delivered) == 3
    assert store.pending_count() == 0 and store.outbox_fence() == 2
    with pytest.raises(StaleLeaderError):
        store.commit({}, [note(group_key="d")], now=T0, token=1)
    assert store.pending_count() == 0  # the refused commit queued nothing


def test_claim_without_a_token_is_the_single_daemon_path(store: AlertStore) -> None:
    store.commit({}, [note(group_key="a")], now=T0)
    item = store.head("mem", "a")
    claimed = store.claim(item, None)
    assert claimed is not None and claimed.attempts == 1 and store.head("mem", "a").attempts == 1
