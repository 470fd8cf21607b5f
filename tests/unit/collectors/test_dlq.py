"""DLQ growth rate and the Delta stats shortcut: pure tables."""

from __future__ import annotations

from collections import Counter

import pytest

from watchtower.collectors.delta_counts import NULL_KEY, counts_from_stats
from watchtower.collectors.dlq import growth_per_minute, header_reason

GROWTH_CASES = [
    # 1. steady: 10 records per 10 s = 60/min
    ([(0, 0), (10, 10), (20, 20)], 20, 60, 60.0),
    # 2. flat
    ([(0, 5), (30, 5), (60, 5)], 60, 300, 0.0),
    # 3. points older than the window are ignored
    ([(0, 0), (100, 1000), (130, 1030)], 130, 60, 60.0),
    # 4. a single point: no rate yet
    ([(0, 7)], 0, 60, None),
    # 5. a reset (topic recreated at 0, then 5 written) counts the new value
    ([(0, 100), (30, 3), (60, 5)], 60, 300, 5.0),
    # 6. no elapsed time
    ([(10, 1), (10, 2)], 10, 60, None),
    # 7. future points (clock skew) do not count
    ([(0, 0), (60, 60), (120, 1000)], 60, 300, 60.0),
]


@pytest.mark.parametrize(("history", "now", "window", "want"), GROWTH_CASES)
def test_growth_per_minute(history, now, window, want) -> None:
    got = growth_per_minute(history, now, window)
    assert got == (None if want is None else pytest.approx(want))


STATS_CASES = [
    # 1. one reason in the whole file: no read needed
    ((12, 0, "bad_json", "bad_json"), Counter({"bad_json": 12})),
    # 2. several reasons: stats cannot tell
    ((12, 0, "bad_json", "empty"), None),
    # 3. all null
    ((3, 3, None, None), Counter({NULL_KEY: 3})),
    # 4. some nulls: read
    ((3, 1, "x", "x"), None),
    # 5. no stats at all (older writers): read
    ((3, None, None, None), None),
    # 6. empty file
    ((0, 0, None, None), Counter()),
]


@pytest.mark.parametrize(("args", "want"), STATS_CASES)
def test_counts_from_stats(args, want) -> None:
    assert counts_from_stats(*args) == want


def test_header_reason() -> None:
    assert header_reason([("batch_id", b"3"), ("failure_reason", b"bad_json")]) == "bad_json"
    assert header_reason(None) == "(none)"
    assert header_reason([("failure_reason", None)]) == "(none)"
