"""The detection verdict's page counting and its look at /api/v1/alerts: a double page (the same message
delivered twice, or a FIRING for an open incident) fails it whatever the scenario expects, `pages: N` bounds
the incidents of an expected rule, and an expected alert /api/v1/alerts never showed, or still shows after
its resolve, fails it too. Pure: tables of pages and looks."""

from __future__ import annotations

import pytest

from watchtower.chaos.detection import AlertsSeen, double_pages, judge_detection
from watchtower.chaos.pager import Page
from watchtower.chaos.scenario import AlertExpectation

T0, END = 1000.0, 1020.0


def page(at: float, kind: str, key: str, rule: str = "late", fp: str = "f1") -> Page:
    return Page(at, kind, rule, "resolved" if kind == "resolved" else "firing", key, fp)


DOUBLE = [
    # (case, pages, double pages named)
    ("1 fired once, resolved once", [page(1, "firing", "g@1#0"), page(9, "resolved", "g@1#1")], []),
    (
        "2 the same FIRING delivered twice (outbox replayed after a crash)",
        [page(1, "firing", "g@1#0"), page(5, "firing", "g@1#0")],
        ["late: firing message g@1#0 delivered again"],
    ),
    (
        "3 a second FIRING while the incident is open (state lost on restart)",
        [page(1, "firing", "g@1#0"), page(5, "firing", "g@5#0")],
        ["late: FIRING g@5#0 while its incident was open"],
    ),
    (
        "4 fired, resolved, fired again: a new incident, not a double page",
        [page(1, "firing", "g@1#0"), page(4, "resolved", "g@1#1"), page(6, "firing", "g@6#0")],
        [],
    ),
    (
        "5 two alerts of one rule each fire once",
        [page(1, "firing", "g@1#0", fp="a"), page(1, "firing", "g@1#0", fp="b")],
        [],
    ),
    (
        "6 an UPDATE of an open incident is no page",
        [page(1, "firing", "g@1#0"), page(3, "update", "g@1#1"), page(9, "resolved", "g@1#2")],
        [],
    ),
    (
        "7 the RESOLVED delivered twice",
        [page(1, "firing", "g@1#0"), page(9, "resolved", "g@1#1"), page(10, "resolved", "g@1#1")],
        ["late: resolved message g@1#1 delivered again"],
    ),
]


@pytest.mark.parametrize("case,pages,named", DOUBLE, ids=[d[0] for d in DOUBLE])
def test_double_pages(case, pages, named) -> None:
    assert double_pages(pages) == named


def test_a_double_page_fails_the_verdict_even_when_it_was_expected_to_fire() -> None:
    once = [page(T0 + 3, "firing", "g@1#0"), page(END + 5, "resolved", "g@1#1")]
    twice = [*once[:1], page(T0 + 9, "firing", "g@1#0"), *once[1:]]
    expect = [AlertExpectation(rule="late", within=30, resolve_within=60)]
    assert judge_detection(once, expect, T0, END).ok
    got = judge_detection(twice, expect, T0, END)
    assert not got.ok and got.alerts[0].ok
    assert "double pages: late: firing message g@1#0 delivered again" in got.summary()


@pytest.mark.parametrize(
    "case,pages,ok",
    [
        ("1 one incident", [(3, "firing", "a#0"), (25, "resolved", "a#1")], True),
        (
            "2 resolved at the restart and paged again",
            [(3, "firing", "a#0"), (8, "resolved", "a#1"), (10, "firing", "b#0"), (25, "resolved", "b#1")],
            False,
        ),
        ("3 never resolved", [(3, "firing", "a#0")], False),
    ],
)
def test_pages_bounds_the_incidents_of_an_expected_rule(case, pages, ok) -> None:
    expect = [AlertExpectation(rule="late", within=30, resolve_within=60, pages=1)]
    got = judge_detection([page(T0 + at, k, key) for at, k, key in pages], expect, T0, END)
    assert got.ok is ok, got.summary()
    assert not got.double_pages  # a resolve in between: a second incident, which only `pages` catches


def seen(at: float, *firing: str, reachable: bool = True) -> AlertsSeen:
    return AlertsSeen(T0 + at, frozenset(firing), reachable)


API = [
    # (case, looks at /api/v1/alerts (seconds from T0), ok, summary fragment)
    ("1 firing, then cleared", [seen(-1), seen(4, "late"), seen(31)], True, ""),
    ("2 never firing there", [seen(-1), seen(4), seen(31)], False, "never firing in /api/v1/alerts"),
    (
        "3 still firing after its resolve",
        [seen(-1), seen(4, "late"), seen(31, "late")],
        False,
        "still firing in /api/v1/alerts after its resolve",
    ),
    (
        "4 an unexpected rule firing there, not paged",
        [seen(-1), seen(4, "late", "lag"), seen(31)],
        False,
        "false positives: lag (in /api/v1/alerts)",
    ),
    (
        "5 firing before the fault: not the fault's",
        [seen(-1, "lag"), seen(4, "late", "lag"), seen(31)],
        True,
        "",
    ),
    (
        "6 unreachable looks (daemon killed) count for nothing",
        [seen(-1), seen(2, reachable=False), seen(4, "late"), seen(31)],
        True,
        "",
    ),
]


@pytest.mark.parametrize("case,looks,ok,fragment", API, ids=[a[0] for a in API])
def test_detection_also_judges_what_the_alerts_api_showed(case, looks, ok, fragment) -> None:
    pages = [page(T0 + 3, "firing", "g@1#0"), page(END + 5, "resolved", "g@1#1")]
    expect = [AlertExpectation(rule="late", within=30, resolve_within=60)]
    got = judge_detection(pages, expect, T0, END, seen=looks)
    assert got.ok is ok, got.summary()
    assert fragment in got.summary()
