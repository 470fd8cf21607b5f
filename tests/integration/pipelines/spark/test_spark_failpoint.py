"""The Spark job SIGKILLed at `after-write-before-commit` (every sink has the batch, Spark's commit log and
the group offsets do not), then restarted: the replayed batch writes nothing twice.

Real tansu, Redis, Spark (the `watchtower pipeline spark` CLI in its own session); read back from the Delta
tables with deltalake and from Redis.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pyarrow.compute as pc
import pytest
import yaml

from pipelines import failpoints
from pipelines.spark.delta_sinks import DeltaSinks
from pipelines.spark.job import checkpoint_dir, delta_root
from watchtower.config.models import PipelineConfig

pytestmark = [pytest.mark.integration, pytest.mark.spark]

PARTITIONS = 3
ROOT = Path(__file__).resolve().parents[4]


def spark_cli(config: Path, bootstrap: str, redis_url: str, fp_dir: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, failpoints.ENV: str(fp_dir)}
    cmd = [sys.executable, "-m", "watchtower", "-c", str(config), "pipeline", "spark"]
    cmd += ["--bootstrap", bootstrap, "--redis-url", redis_url, *extra]
    with open(config.parent / "spark.log", "ab") as log:
        return subprocess.Popen(
            cmd, env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=log
        )


def wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def batches_done(pipeline: PipelineConfig) -> int:
    try:
        return DeltaSinks(delta_root(pipeline), "reader").open().table("batches").to_pyarrow_table().num_rows
    except Exception:  # noqa: BLE001 - the job has not created its tables yet
        return 0


def test_crash_after_write_before_commit_replays_without_duplicates(
    scratch, bootstrap, redis_url, redis_client, topic_factory, group_factory, order_producer
) -> None:
    topic, dlq_topic = topic_factory("orders", PARTITIONS), topic_factory("orders-dlq", 1)
    pipeline = PipelineConfig(
        topic=topic,
        dlq_topic=dlq_topic,
        data_dir=scratch / "data",
        consumer_group=group_factory("spark"),
        trigger_interval=0.2,
    )
    config = scratch / "watchtower.yaml"
    config.write_text(yaml.safe_dump({"pipeline": orjson.loads(pipeline.model_dump_json())}))
    fp_dir = scratch / "failpoints"
    prod = order_producer(topic)
    now = int(time.time() * 1000)
    ids: set[str] = set()

    def send(n: int, user: str) -> set[str]:
        sent = {
            orjson.loads(prod.event(i % PARTITIONS, now, user=f"{user}{i % 7}"))["event_id"] for i in range(n)
        }
        ids.update(sent)
        return sent

    send(200, "warm-")  # the first batch: Spark's start-up is over before the failpoint is armed
    prod.end_markers(PARTITIONS)
    first = spark_cli(config, bootstrap, redis_url, fp_dir)
    try:
        wait_for(lambda: batches_done(pipeline) or first.poll() is not None, 180, "the first batch")
        assert first.poll() is None, "the first run exited by itself"
        failpoints.arm(fp_dir, failpoints.AFTER_WRITE_BEFORE_COMMIT, "crash-")
        injected = send(500, "crash-")
        prod.end_markers(PARTITIONS)
        assert first.wait(120) == -signal.SIGKILL  # the driver killed itself at the failpoint
        crashed_at = time.monotonic()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(30)
        try:
            os.killpg(first.pid, signal.SIGKILL)  # its JVM, as on a lost machine
        except ProcessLookupError:
            pass
    assert not failpoints.armed(fp_dir, failpoints.AFTER_WRITE_BEFORE_COMMIT)

    # What the crash left: batch N in every sink, in Spark's offset log, not in its commit log.
    cp = checkpoint_dir(pipeline)
    n = max(int(p.name) for p in (cp / "offsets").iterdir() if p.name.isdigit())
    assert not (cp / "commits" / str(n)).exists()
    t = DeltaSinks(delta_root(pipeline), "reader").open()
    assert t.last_batch()["batch_id"] == n
    written = injected & set(t.table("events").to_pyarrow_table().column("event_id").to_pylist())
    assert written, "the crashed batch held injected events and wrote them"

    restarted_at = time.monotonic()
    second = spark_cli(config, bootstrap, redis_url, fp_dir, "--until-idle", "5")
    try:
        wait_for(lambda: (cp / "commits" / str(n)).exists(), 180, f"the replayed batch {n} to commit")
        replay_s = time.monotonic() - restarted_at
        assert second.wait(300) == 0
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
    print(
        f"crash-after-write: {len(injected)} injected, {len(written)} written before the crash, batch {n} "
        f"replayed, restart to commit {replay_s:.1f}s "
        f"({time.monotonic() - crashed_at:.1f}s crash to idle exit)"
    )

    t = DeltaSinks(delta_root(pipeline), "reader").open()
    events = Counter(t.table("events").to_pyarrow_table().column("event_id").to_pylist())
    assert {i: c for i, c in events.items() if c > 1} == {}  # nothing written twice
    assert set(events) == ids  # nothing missing: warm-up and injected, each one row
    batches = t.table("batches").to_pyarrow_table().column("batch_id").to_pylist()
    assert sorted(batches) == list(range(len(batches)))  # the replayed batch has one accounting row
    assert pc.sum(t.table("aggregates").to_pyarrow_table().column("event_count")).as_py() == 5 * len(ids)
    assert sum(int(f[b"count"]) for _, f in redis_client.xrange("watchtower:e2e")) == len(ids)
