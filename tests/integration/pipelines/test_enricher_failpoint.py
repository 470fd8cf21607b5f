"""An enricher worker SIGKILLed at `after-write-before-commit` (its Redis MULTI/EXEC done, the Kafka commit
not): the pool restarts it, the group redelivers the batch, and Redis still counts every event once."""

from __future__ import annotations

import pytest
from test_enricher_workers import (
    FAST_WORKERS,
    FAULTS,
    PARTITIONS,
    committed,
    end_offsets,
    expected_state,
    generate,
    owners_are,
    redis_state,
    wait_caught_up,
    wait_for,
)
from test_generator_kafka import read_topic

from pipelines import failpoints
from pipelines.workers.enricher import EnricherStore, WorkerSettings
from pipelines.workers.pool import WorkerPool

pytestmark = pytest.mark.integration


@pytest.fixture
def setup(bootstrap, redis_url, redis_client, topic_factory, group_factory):
    topic, group = topic_factory("orders", partitions=PARTITIONS), group_factory("enricher")
    settings = WorkerSettings(
        bootstrap=bootstrap, redis_url=redis_url, topic=topic, group=group, workers=FAST_WORKERS
    )
    return settings, EnricherStore(redis_client, group, topic)


def test_crash_between_redis_write_and_kafka_commit_counts_once(bootstrap, redis_client, setup, tmp_path):
    settings, store = setup
    fp_dir = tmp_path / "failpoints"
    with WorkerPool(settings, restart_delay=0.5, env={failpoints.ENV: str(fp_dir)}) as pool:
        wait_for(lambda: owners_are(store, 2), 60, "two workers to share the partitions")
        # The generator's users are u-<n>: the first batch holding any of them crashes its worker.
        failpoints.arm(fp_dir, failpoints.AFTER_WRITE_BEFORE_COMMIT, "u-")
        generate(bootstrap, settings.topic, 3_000, FAULTS.model_copy(update={"rate": 2000.0}))
        wait_for(lambda: not failpoints.armed(fp_dir, failpoints.AFTER_WRITE_BEFORE_COMMIT), 30, "the hit")
        wait_for(lambda: pool.restarts == 1, 10, "the pool to restart the crashed worker")
        ends = end_offsets(bootstrap, settings.topic)
        wait_caught_up(store, ends, timeout=120)
        wait_for(
            lambda: committed(bootstrap, settings.topic, settings.group) == ends, 60, "the group commits"
        )
    records = read_topic(bootstrap, settings.topic, PARTITIONS)
    assert redis_state(redis_client, store) == expected_state(records)
    stats = store.stats()
    # The crashed batch was applied, then redelivered and skipped record by record.
    assert stats.get("replayed", 0) > 0, stats
    print(f"enricher crash-after-write: {len(records)} records, {stats['replayed']} replayed, stats {stats}")
