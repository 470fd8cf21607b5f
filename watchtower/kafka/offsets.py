"""A consumer group's committed offsets against the partitions' high watermarks: lag, and whether it drained.

Shared by the demo (its drain before accounting) and chaos runs (recovery); the admin client is the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec


@dataclass(frozen=True)
class GroupOffsets:
    committed: dict[int, int]
    high: dict[int, int]

    @property
    def lag(self) -> int:
        return sum(max(0, h - self.committed.get(p, 0)) for p, h in self.high.items())

    @property
    def drained(self) -> bool:
        return self.caught_up(self.high)

    def caught_up(self, target: dict[int, int]) -> bool:
        """Committed at least up to `target` (high watermarks taken earlier) on every partition: what was in
        the topic then is processed, whatever arrived since."""
        return bool(target) and all(self.committed.get(p, -1) >= h for p, h in target.items())


def group_offsets(
    admin: AdminClient, group: str, topic: str, partitions: int, timeout: float = 5.0
) -> GroupOffsets:
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    high_f = admin.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=timeout)
    high = {tp.partition: f.result(timeout).offset for tp, f in high_f.items()}
    fut = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, tps)], request_timeout=timeout
    )[group]
    committed = {tp.partition: tp.offset for tp in fut.result(timeout).topic_partitions if tp.offset >= 0}
    return GroupOffsets(committed, high)
