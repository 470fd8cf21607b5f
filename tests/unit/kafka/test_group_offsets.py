"""A group's committed offsets against high watermarks: drained (caught up with the end now) and caught up
with a target taken earlier (what the topic held then is processed, whatever arrived since). Pure."""

from __future__ import annotations

import pytest

from watchtower.kafka.offsets import GroupOffsets

CASES = [
    # (case, committed, high now, target taken earlier, drained, caught up)
    ("1 everything committed", {0: 10, 1: 5}, {0: 10, 1: 5}, {0: 10, 1: 5}, True, True),
    (
        "2 new records since the target: not drained, caught up",
        {0: 10, 1: 5},
        {0: 12, 1: 6},
        {0: 10, 1: 5},
        False,
        True,
    ),
    ("3 one partition behind the target", {0: 10, 1: 4}, {0: 12, 1: 6}, {0: 10, 1: 5}, False, False),
    ("4 a partition never committed", {0: 10}, {0: 10, 1: 0}, {0: 10, 1: 3}, False, False),
    ("5 no partitions known: never", {}, {}, {}, False, False),
]


@pytest.mark.parametrize(
    ("case", "committed", "high", "target", "drained", "caught_up"), CASES, ids=[c[0] for c in CASES]
)
def test_drained_and_caught_up(case, committed, high, target, drained, caught_up) -> None:
    offsets = GroupOffsets(committed, high)
    assert (offsets.drained, offsets.caught_up(target)) == (drained, caught_up)
