"""Silence matchers: a table of cases, no Redis."""

from __future__ import annotations

import pytest

from watchtower.alerting.matchers import MatchOp
from watchtower.alerting.silences import Silence, parse_matcher, parse_matchers, silenced
from watchtower.core.types import labels

ORDERS = labels(group="orders-enricher", topic="orders")


@pytest.mark.parametrize(
    ("n", "matcher", "rule", "lbls", "hit"),
    [
        (1, "rule=lag_high", "lag_high", ORDERS, True),
        (2, "rule=lag_high", "dlq_growth", ORDERS, False),
        (3, 'group=~"orders.*"', "lag_high", ORDERS, True),
        (4, 'group=~"orders"', "lag_high", ORDERS, False),  # regexes match the whole value
        (5, "group!=orders-enricher", "lag_high", ORDERS, False),
        (6, "group!~'pay.*'", "lag_high", ORDERS, True),
        (7, "partition=", "lag_high", ORDERS, True),  # a missing label reads as ""
        (8, "topic = orders", "lag_high", ORDERS, True),
    ],
)
def test_matcher_table(n: int, matcher: str, rule: str, lbls, hit: bool) -> None:
    s = Silence((parse_matcher(matcher),), starts_at=0, ends_at=10)
    assert s.matches(rule, lbls, now=5) is hit, n


def test_parse_from_cli_words_and_from_one_string() -> None:
    words = parse_matchers(["rule=lag_high", 'group=~"orders.*"'])
    line = parse_matchers('rule=lag_high group=~"orders.*"')
    assert words == line
    assert line[1].op is MatchOp.RE and line[1].value == "orders.*"


@pytest.mark.parametrize("bad", ["lag_high", "=x", "group=~(", ""])
def test_bad_matchers_say_how_to_write_them(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_matchers(bad)


def test_silence_window_and_all_matchers() -> None:
    s = Silence(parse_matchers('rule=lag_high group=~"orders.*"'), starts_at=100, ends_at=200)
    assert silenced([s], "lag_high", ORDERS, 150) is s
    assert silenced([s], "lag_high", ORDERS, 99) is None
    assert silenced([s], "lag_high", ORDERS, 200) is None
    assert silenced([s], "lag_high", labels(group="payments"), 150) is None
    assert Silence.from_dict(s.to_dict()) == s
