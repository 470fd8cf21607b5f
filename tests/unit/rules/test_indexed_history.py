"""The indexed history the daemon hands to rules gives exactly the results a plain list of readings gives."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from watchtower.core.types import Reading, Sample, labels
from watchtower.rules.config import load_rules
from watchtower.rules.series import HistoryIndex, IndexedHistory

T0 = 1_700_000_000.0
DEFAULT_RULES = Path(__file__).parents[3] / "alerts" / "default.yaml"


def history(seed: int) -> list[Reading]:
    """Two collectors, out of order, a partition that disappears, counters that reset, equal timestamps."""
    rng = random.Random(seed)
    out = []
    committed = {p: 0 for p in range(4)}
    for i in range(40):
        at = T0 + i * 15
        samples = []
        for p in range(4 if i < 30 else 3):
            committed[p] += rng.randint(0, 300)
            lbl = labels(group="g", topic="orders", partition=p)
            samples += [
                Sample("watchtower_consumer_committed_offset", lbl, float(committed[p])),
                Sample("watchtower_consumer_lag_messages", lbl, float(rng.randint(0, 20_000))),
                Sample("watchtower_consumer_lag_seconds", lbl, rng.random() * 60),
            ]
        out.append(Reading("kafka_lag", at, tuple(samples)))
        total = float(i * 100 if i != 20 else 5)
        out.append(
            Reading(
                "e2e",
                at,
                (
                    Sample("watchtower_e2e_events_total", labels(source="spark"), total),
                    Sample(
                        "watchtower_e2e_events_slow_total", labels(source="spark"), total * rng.random() / 10
                    ),
                    Sample(
                        "watchtower_e2e_latency_seconds",
                        labels(source="spark", quantile="0.99"),
                        rng.random() * 9,
                    ),
                ),
            )
        )
    out.append(
        Reading(
            "e2e",
            T0 + 15 * 39,
            (Sample("watchtower_e2e_latency_seconds", labels(source="spark", quantile="0.99"), 99.0),),
        )
    )
    rng.shuffle(out)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_default_rule_agrees_on_both_histories(seed: int) -> None:
    plain = history(seed)
    view = HistoryIndex().view(plain)
    assert isinstance(view, IndexedHistory) and len(view) == len(plain)
    for rule in load_rules(DEFAULT_RULES).rules:
        for now in (T0 + 100, T0 + 452, T0 + 585, T0 + 1000):
            assert rule.evaluate(view, now) == rule.evaluate(plain, now), (rule.name, now)


def test_index_reuses_splits_and_forgets_readings_that_left() -> None:
    index = HistoryIndex()
    h = history(1)
    index.view(h)
    assert len(index._splits) == len(h)
    index.view(h[:5])
    assert len(index._splits) == 5
