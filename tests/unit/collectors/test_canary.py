from __future__ import annotations

import pytest

from pipelines.events import encode, validate
from watchtower.collectors.canary import next_partitions
from watchtower.contract import canary_event

ROUND_CASES = [
    # 1. every partition, cursor untouched
    ([0, 1, 2], "every_partition", 0, [0, 1, 2], 0),
    # 2. round robin advances
    ([0, 1, 2], "round_robin", 0, [0], 1),
    ([0, 1, 2], "round_robin", 2, [2], 0),
    # 3. the topic shrank under the cursor
    ([0, 1], "round_robin", 5, [1], 0),
    # 4. no partitions
    ([], "round_robin", 1, [], 1),
]


@pytest.mark.parametrize(("parts", "mode", "cursor", "want", "after"), ROUND_CASES)
def test_next_partitions(parts, mode, cursor, want, after) -> None:
    assert next_partitions(parts, mode, cursor) == (want, after)


def test_a_canary_is_a_valid_control_event_of_the_contract() -> None:
    e = canary_event(1795448640123, "canary-x")
    v = validate(encode(e))
    assert v.ok and v.event["event_type"] == "canary" and v.event_time_ms == 1795448640123
    assert e["event_id"] == "canary-x"
