"""Two real `watchtower run` daemons on one Redis with `ha.enabled`: exactly one evaluates and pages.

Kill -9 the leader while its incident fires: the other takes the lease within the lease time, restores the
alert state, resolves that incident once and pages a new one once; every message reaches the fake Slack
exactly once; the deposed leader's token is refused by the outbox and by a fenced write.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import redis
from kafka_support import commit_offsets, produce_exact
from prometheus_client.parser import text_string_to_metric_families
from slack_fake import FakeSlack
from test_e2e_slack import config, wait_for
from watchtower_process import WatchtowerProcess

from watchtower.alerting.store import AlertStore, StaleLeaderError
from watchtower.scale.fencing import fenced_set

pytestmark = pytest.mark.integration

LEASE = 3.0


def leader_pid(r: redis.Redis, prefix: str) -> int | None:
    holder = r.get(f"{prefix}lease")
    return None if holder is None else int(holder.decode().split(":")[1])


def posts_about(fake: FakeSlack, text: str) -> list[dict]:
    return [p for p in fake.all_posts() if text in p["text"]]


def test_leader_killed_the_other_takes_over_no_double_page(
    tmp_path: Path, bootstrap: str, redis_url: str, fake_slack: FakeSlack, topic_factory, group_factory
) -> None:
    topic = topic_factory("ha")
    first, second = group_factory("ha-first"), group_factory("ha-second")
    for g in (first, second):
        commit_offsets(bootstrap, g, {(topic, 0): 0})
    ha_prefix = f"wt-ha-{uuid.uuid4().hex[:8]}:"
    cfg = config(tmp_path, bootstrap, redis_url, fake_slack, topic)
    cfg["ha"] = {"enabled": True, "lease": f"{LEASE}s", "redis_prefix": ha_prefix}
    daemons = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        daemons.append(WatchtowerProcess(tmp_path / name, {**cfg, "daemon": dict(cfg["daemon"])}).start())
    r = redis.Redis.from_url(redis_url)
    store = AlertStore(r, prefix=cfg["alerting"]["redis_prefix"], sinks=("slack",))
    try:
        by_pid = {d.proc.pid: d for d in daemons}
        pid = wait_for(lambda: leader_pid(r, ha_prefix), 20, "a leader")
        leader = by_pid[pid]
        [follower] = [d for d in daemons if d is not leader]
        wait_for(lambda: leader.alerts()["evaluation"]["cycles"] >= 2, 20, "evaluation to run", leader)

        produce_exact(bootstrap, topic, {0: 120})  # both groups 120 behind: two incidents
        wait_for(lambda: len(fake_slack.top_level("C1")) == 2, 30, "both pages", leader)
        time.sleep(2 * LEASE)  # both daemons see the breach for two leases: still one page each
        assert len(posts_about(fake_slack, first)) == 1 and len(posts_about(fake_slack, second)) == 1
        assert firing_groups(leader) == {first, second}
        assert follower.alerts()["alerts"] == []  # the follower moves no state on
        # Leadership is visible on each daemon's /metrics: exactly one leads.
        assert ha_series(leader, "watchtower_ha_leader") == 1.0
        assert ha_series(follower, "watchtower_ha_leader") == 0.0
        assert ha_series(follower, "watchtower_ha_fencing_token") is None

        old_token = int(r.get(f"{ha_prefix}lease:token"))
        leader.kill9()
        killed_at = time.monotonic()
        wait_for(lambda: leader_pid(r, ha_prefix) == follower.proc.pid, 2 * LEASE, "the follower to lead")
        takeover = time.monotonic() - killed_at
        assert takeover <= LEASE + 0.5, takeover
        new_token = int(r.get(f"{ha_prefix}lease:token"))
        assert new_token == old_token + 1
        assert ha_series(follower, "watchtower_ha_leader") == 1.0
        assert ha_series(follower, "watchtower_ha_fencing_token") == new_token
        assert ha_series(follower, "watchtower_ha_lease_acquisitions_total") == 1.0

        commit_offsets(
            bootstrap, first, {(topic, 0): 120}
        )  # the first incident resolves under the new leader
        roots = {g: posts_about(fake_slack, g)[0] for g in (first, second)}
        wait_for(lambda: roots[first]["replies"], 30, "the resolve", follower)
        wait_for(
            lambda: firing_groups(follower) == {second}, 20, "the restored state on the new leader", follower
        )
        time.sleep(2)  # more cycles: nothing else may arrive
        assert [len(roots[g]["replies"]) for g in (first, second)] == [1, 0]
        assert len(fake_slack.top_level("C1")) == 2  # no second page for the incident still firing
        assert fake_slack.problems == []

        # The deposed leader's token is refused wherever a leader writes.
        assert store.outbox_fence() == new_token
        with pytest.raises(StaleLeaderError):
            store.commit({"alerts": {}}, [], token=old_token)
        assert fenced_set(r, f"{ha_prefix}desired", 5, new_token)
        assert not fenced_set(r, f"{ha_prefix}desired", 1, old_token)
        assert r.get(f"{ha_prefix}desired") == b"5"
        assert follower.stop() == 0
        assert r.get(f"{ha_prefix}lease") is None  # a clean stop releases the lease
    finally:
        for d in daemons:
            d.stop()
        r.close()


def firing_groups(wt: WatchtowerProcess) -> set[str]:
    return {a["labels"]["group"] for a in wt.alerts()["alerts"] if a["state"] == "firing"}


def ha_series(wt: WatchtowerProcess, name: str) -> float | None:
    """The one sample of an HA family on the daemon's /metrics, parsed as Prometheus does; None if absent."""
    values = [
        s.value
        for fam in text_string_to_metric_families(wt.metrics())
        for s in fam.samples
        if s.name == name and s.labels.get("holder")
    ]
    assert len(values) <= 1, (name, values)
    return values[0] if values else None
