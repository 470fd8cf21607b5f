from __future__ import annotations

import pytest

from watchtower.core.history import History
from watchtower.core.types import Reading, Sample, labels


def reading(collector: str, at: float, v: float) -> Reading:
    return Reading(collector, at, (Sample("m", labels(p=0), v), Sample("m", labels(p=1), v * 10)))


def test_ring_buffer_is_bounded_and_windows_are_immutable() -> None:
    h = History(3)
    for i in range(5):
        h.append(reading("a", float(i), float(i)))
    assert [r.at for r in h.readings("a")] == [2.0, 3.0, 4.0]
    window = h.window("a", "m", since=3.0)
    assert [(at, dict(v)) for at, v in window] == [
        (3.0, {labels(p=0): 3.0, labels(p=1): 30.0}),
        (4.0, {labels(p=0): 4.0, labels(p=1): 40.0}),
    ]
    with pytest.raises(TypeError):
        window[0][1][labels(p=0)] = 1.0  # type: ignore[index]
    assert h.series("a", "m", labels(p=1), since=4.0) == ((4.0, 40.0),)


def test_snapshot_merges_latest_per_collector_and_forgets_down_ones() -> None:
    h = History(2)
    h.append(reading("a", 1.0, 1.0))
    h.append(reading("b", 2.0, 2.0))
    h.append(reading("a", 3.0, 3.0))
    snap = h.snapshot()
    assert snap.at == 3.0 and set(snap.readings) == {"a", "b"}
    assert snap.value("a", "m", labels(p=0)) == 3.0
    h.forget("a")
    assert set(h.snapshot().readings) == {"b"}
    assert set(snap.readings) == {"a", "b"}  # a snapshot already handed out does not change
    assert len(h.readings("a")) == 2  # the history itself keeps what was measured
