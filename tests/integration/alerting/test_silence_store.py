"""Silences against the real Redis: cached between changes, only unended ones read, ended ones pruned."""

from __future__ import annotations

import orjson
import pytest
import redis
from alerting_samples import T0
from kafka_support import unique

from watchtower.alerting.silence_store import ENDED_RETENTION, PRUNE_EVERY
from watchtower.alerting.silences import Silence, parse_matchers
from watchtower.alerting.store import AlertStore

pytestmark = pytest.mark.integration

HOUR = 3600.0


def silence(rule: str, starts: float, ends: float) -> Silence:
    return Silence(parse_matchers(f"rule={rule}"), starts_at=starts, ends_at=ends)


@pytest.fixture
def prefix(redis_client: redis.Redis) -> str:
    return unique("wt-silences:") + ":"


def calls(client: redis.Redis, *commands: str) -> dict[str, int]:
    stats = client.info("commandstats")
    return {c: stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in commands}


def test_an_unchanged_set_of_silences_costs_one_get_per_evaluation(
    redis_client: redis.Redis, prefix: str
) -> None:
    daemon, cli = (
        AlertStore(redis_client, prefix),
        AlertStore(redis.Redis(connection_pool=redis_client.connection_pool), prefix),
    )
    cli.add_silence(a := silence("a", T0, T0 + HOUR))
    assert daemon.silences(T0) == [a]
    reads = daemon.silence_store.reads
    before = calls(redis_client, "get", "hvals", "hmget", "zrangebyscore", "hgetall")
    for i in range(1, 11):
        assert daemon.silences(T0 + i) == [a]
    after = calls(redis_client, *before)
    assert daemon.silence_store.reads == reads
    assert after["get"] - before["get"] == 10
    assert all(after[c] == before[c] for c in ("hvals", "hmget", "zrangebyscore", "hgetall"))

    # Another process (the CLI, another daemon) adds or ends one: the next evaluation sees it.
    cli.add_silence(b := silence("b", T0, T0 + 2 * HOUR))
    assert {s.id for s in daemon.silences(T0 + 20)} == {a.id, b.id}
    cli.expire_silence(a.id, now=T0 + 21)
    assert daemon.silences(T0 + 22) == [b]
    assert daemon.silence_store.reads == reads + 2


def test_time_passing_needs_no_reread(redis_client: redis.Redis, prefix: str) -> None:
    store = AlertStore(redis_client, prefix)
    short, later = silence("short", T0, T0 + 10), silence("later", T0 + 30, T0 + 90)
    store.add_silence(short)
    store.add_silence(later)
    assert store.silences(T0 + 5) == [short, later]  # one that starts later is held, not yet applied
    assert not later.matches("later", (), T0 + 5)
    reads = store.silence_store.reads
    assert store.silences(T0 + 11) == [later]
    assert store.silences(T0 + 91) == []
    assert store.silence_store.reads == reads


def test_only_silences_that_have_not_ended_are_read(redis_client: redis.Redis, prefix: str) -> None:
    store = AlertStore(redis_client, prefix)
    for i in range(200):
        store.add_silence(silence(f"old{i}", T0 - 2 * HOUR, T0 - HOUR))  # ended, within the retention
    store.add_silence(live := silence("live", T0, T0 + HOUR))
    before = calls(redis_client, "hmget", "hvals")
    assert store.silences(T0) == [live]
    after = calls(redis_client, *before)
    assert after["hvals"] == before["hvals"] and after["hmget"] - before["hmget"] == 1
    assert len(store.silences(T0, include_expired=True)) == 201  # still listed with --all


def test_ended_silences_are_pruned_after_the_retention(redis_client: redis.Redis, prefix: str) -> None:
    store = AlertStore(redis_client, prefix)
    gone = store.add_silence(silence("gone", T0 - 3 * HOUR, T0 - ENDED_RETENTION - 1))
    kept = store.add_silence(silence("kept", T0 - 3 * HOUR, T0 - ENDED_RETENTION + HOUR))
    live = store.add_silence(silence("live", T0, T0 + HOUR))
    assert store.silences(T0) == [live]  # the first evaluation prunes
    assert store.get_silence(gone.id) is None
    assert store.silences(T0, include_expired=True) == [kept, live]  # by start: kept started earlier
    assert redis_client.zcard(prefix + "silences:ends") == 2 and redis_client.hlen(prefix + "silences") == 2
    # `kept` goes at the first prune after its retention; prunes run at most every PRUNE_EVERY.
    assert store.silences(T0 + HOUR + 1) == []
    assert store.get_silence(kept.id) is None
    assert store.silences(T0 + HOUR + 1 + PRUNE_EVERY / 2, include_expired=True) == [live]


def test_silences_written_before_the_index_are_found(redis_client: redis.Redis, prefix: str) -> None:
    old = silence("legacy", T0, T0 + HOUR)  # as the previous version stored it: the hash only
    redis_client.hset(prefix + "silences", old.id, orjson.dumps(old.to_dict()))
    store = AlertStore(redis_client, prefix)
    assert store.silences(T0 + 1) == [old]
    assert redis_client.zscore(prefix + "silences:ends", old.id) == old.ends_at
