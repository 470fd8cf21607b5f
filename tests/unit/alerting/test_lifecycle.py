"""The alert lifecycle: tables of steps -> notifications. This is the correctness proof of paging behaviour.

Rules: `lag` (for 1m), `fast` and `fast2` (for 0), `sticky` (for 0, keep_firing_for 2m), `batch1`/`batch2` on a
route with a 30 s group_wait. The default route groups by `group`, group_wait 0, group_interval 1m, repeat 10m.
Times are seconds after T0.
"""

from __future__ import annotations

import json

import pytest

from watchtower.alerting.lifecycle import LifecycleConfig, LifecycleState, RoutePolicy, RuleTiming, step
from watchtower.alerting.model import AlertState, NotificationKind, RuleResult, Severity
from watchtower.alerting.silences import Silence, parse_matchers
from watchtower.core.types import labels

T0 = 1_700_000_000.0
CFG = LifecycleConfig(
    rules={
        "lag": RuleTiming(for_=60),
        "fast": RuleTiming(),
        "fast2": RuleTiming(),
        "sticky": RuleTiming(keep_firing_for=120),
        "batch1": RuleTiming(route="batched"),
        "batch2": RuleTiming(route="batched"),
    },
    routes={
        "default": RoutePolicy(group_by=("group",), group_wait=0, group_interval=60, repeat_interval=600),
        "batched": RoutePolicy(group_by=(), group_wait=30, group_interval=60, repeat_interval=600),
    },
)


def r(
    rule: str,
    group: str = "a",
    breaching: bool = True,
    severity: Severity = Severity.PAGE,
    no_data: bool = False,
) -> RuleResult:
    return RuleResult(
        rule,
        labels(group=group),
        breaching,
        None if no_data else 42.0,
        10.0,
        severity,
        f"{rule} {group}",
        no_data=no_data,
    )


def run(steps, config=CFG, silences=(), state=None, roundtrip=False, skipped=None):
    """Feed (t, results) steps; return the final state and the notifications as (t, kind, (rule/group:state, ...))."""
    state = state or LifecycleState()
    log, raw = [], []
    for t, results in steps:
        if roundtrip:
            state = LifecycleState.from_dict(json.loads(json.dumps(state.to_dict())))
        state, notes = step(
            state,
            results,
            T0 + t,
            config,
            silences=silences,
            skipped_rules=(skipped or {}).get(t, frozenset()),
        )
        raw += notes
        for n in notes:
            shown = tuple(f"{a.rule}/{dict(a.labels)['group']}:{a.state.value}" for a in n.alerts)
            log.append((t, n.kind.value, shown))
    return state, log, raw


def states(state: LifecycleState) -> dict[str, str]:
    return {
        f"{rec.alert.rule}/{dict(rec.alert.labels)['group']}": rec.alert.state.value
        for rec in state.alerts.values()
    }


CASES = [
    # n, what it shows, steps [(t, results)], expected notifications, expected alert states after the last step
    (
        1,
        "pending never notifies",
        [(0, [r("lag")]), (30, [r("lag")]), (45, [r("lag", breaching=False)])],
        [],
        {},
    ),
    (
        2,
        "for exactly met fires at that step",
        [(0, [r("lag")]), (30, [r("lag")]), (60, [r("lag")])],
        [(60, "firing", ("lag/a:firing",))],
        {"lag/a": "firing"},
    ),
    (
        3,
        "one second short of for: still pending",
        [(0, [r("lag")]), (59, [r("lag")])],
        [],
        {"lag/a": "pending"},
    ),
    (
        4,
        "keep_firing_for suppresses flapping: one incident, resolved 2m after the last breach",
        [
            (0, [r("sticky")]),
            (30, [r("sticky", breaching=False)]),
            (60, [r("sticky")]),
            (90, [r("sticky", breaching=False)]),
            (150, [r("sticky", breaching=False)]),
            (180, [r("sticky", breaching=False)]),
        ],
        [(0, "firing", ("sticky/a:firing",)), (180, "resolved", ("sticky/a:resolved",))],
        {},
    ),
    (
        5,
        "without keep_firing_for the same signal flaps into two incidents",
        [
            (0, [r("fast")]),
            (30, [r("fast", breaching=False)]),
            (60, [r("fast")]),
            (90, [r("fast", breaching=False)]),
            (120, [r("fast")]),
        ],
        [
            (0, "firing", ("fast/a:firing",)),
            (90, "resolved", ("fast/a:resolved",)),
            (120, "firing", ("fast/a:firing",)),
        ],
        {"fast/a": "firing"},
    ),
    (
        6,
        "repeat interval re-sends a long-firing incident",
        [(t, [r("fast")]) for t in (0, 300, 599, 600, 900, 1200)],
        [
            (0, "firing", ("fast/a:firing",)),
            (600, "update", ("fast/a:firing",)),
            (1200, "update", ("fast/a:firing",)),
        ],
        {"fast/a": "firing"},
    ),
    (
        7,
        "alerts that fire together share one message",
        [(0, [r("fast"), r("fast2")])],
        [(0, "firing", ("fast/a:firing", "fast2/a:firing"))],
        {"fast/a": "firing", "fast2/a": "firing"},
    ),
    (
        8,
        "different group labels: separate incidents",
        [(0, [r("fast", "a"), r("fast", "b")])],
        [(0, "firing", ("fast/a:firing",)), (0, "firing", ("fast/b:firing",))],
        {"fast/a": "firing", "fast/b": "firing"},
    ),
    (
        9,
        "a new member waits for group_interval, then one UPDATE",
        [
            (0, [r("fast")]),
            (30, [r("fast"), r("fast2")]),
            (60, [r("fast"), r("fast2")]),
            (90, [r("fast"), r("fast2")]),
        ],
        [(0, "firing", ("fast/a:firing",)), (60, "update", ("fast/a:firing", "fast2/a:firing"))],
        {"fast/a": "firing", "fast2/a": "firing"},
    ),
    (
        10,
        "a partial resolve is an UPDATE; the whole group resolving is RESOLVED",
        [
            (0, [r("fast"), r("fast2")]),
            (60, [r("fast", breaching=False), r("fast2")]),
            (90, [r("fast2")]),
            (120, [r("fast2", breaching=False)]),
        ],
        [
            (0, "firing", ("fast/a:firing", "fast2/a:firing")),
            (60, "update", ("fast/a:resolved", "fast2/a:firing")),
            (120, "resolved", ("fast2/a:resolved",)),
        ],
        {},
    ),
    (
        11,
        "group_wait collects alerts that fire close together",
        [
            (0, [r("batch1", "x")]),
            (20, [r("batch1", "x"), r("batch2", "y")]),
            (30, [r("batch1", "x"), r("batch2", "y")]),
        ],
        [(30, "firing", ("batch1/x:firing", "batch2/y:firing"))],
        {"batch1/x": "firing", "batch2/y": "firing"},
    ),
    (
        12,
        "a series that disappears (no result at all) resolves",
        [(0, [r("fast", "a"), r("fast", "b")]), (60, [r("fast", "a")])],
        [
            (0, "firing", ("fast/a:firing",)),
            (0, "firing", ("fast/b:firing",)),
            (60, "resolved", ("fast/b:resolved",)),
        ],
        {"fast/a": "firing"},
    ),
    (
        13,
        "no data is not a breach",
        [
            (0, [r("fast")]),
            (60, [r("fast", breaching=True, no_data=True)]),
        ],  # a rule may not claim a breach without data
        [(0, "firing", ("fast/a:firing",)), (60, "resolved", ("fast/a:resolved",))],
        {},
    ),
    (
        14,
        "a pending alert that fires while its group is open joins with an UPDATE",
        [(0, [r("fast")]), (30, [r("fast"), r("lag")]), (90, [r("fast"), r("lag")])],
        [(0, "firing", ("fast/a:firing",)), (90, "update", ("fast/a:firing", "lag/a:firing"))],
        {"fast/a": "firing", "lag/a": "firing"},
    ),
    (
        15,
        "a severity change is an UPDATE",
        [(0, [r("fast", severity=Severity.TICKET)]), (60, [r("fast", severity=Severity.PAGE)])],
        [(0, "firing", ("fast/a:firing",)), (60, "update", ("fast/a:firing",))],
        {"fast/a": "firing"},
    ),
    (
        16,
        "resolve waits for group_interval after the last message",
        [(0, [r("fast")]), (10, [r("fast", breaching=False)]), (50, []), (60, [])],
        [(0, "firing", ("fast/a:firing",)), (60, "resolved", ("fast/a:resolved",))],
        {},
    ),
    (
        17,
        "fire and resolve inside group_wait: nothing to say",
        [(0, [r("batch1", "x")]), (10, [r("batch1", "x", breaching=False)]), (30, []), (60, [])],
        [],
        {},
    ),
]


def _step_ids(c):
    return f"case{c[0]}"


@pytest.mark.parametrize(("n", "what", "steps", "notes", "final"), CASES, ids=[_step_ids(c) for c in CASES])
def test_lifecycle_table(n, what, steps, notes, final):
    state, log, _ = run(steps)
    assert log == notes, f"{n}: {what}"
    assert states(state) == final, f"{n}: {what}"


@pytest.mark.parametrize(("n", "what", "steps", "notes", "final"), CASES, ids=[_step_ids(c) for c in CASES])
def test_state_survives_a_restart_at_every_step(n, what, steps, notes, final):
    """Serialize to JSON and back between every step (what Redis does): identical behaviour."""
    state, log, raw = run(steps, roundtrip=True)
    _, _, raw_direct = run(steps)
    assert log == notes and states(state) == final, f"{n}: {what}"
    assert raw == raw_direct


def test_idempotency_keys_are_deterministic_and_new_incidents_get_new_keys():
    steps = [(0, [r("fast")]), (60, [r("fast"), r("fast2")]), (120, []), (180, [r("fast")])]
    _, _, first = run(steps)
    _, _, again = run(steps)
    assert [n.idempotency_key for n in first] == [n.idempotency_key for n in again]
    g1 = f'default{{group="a"}}@{round(T0 * 1000)}'
    g2 = f'default{{group="a"}}@{round((T0 + 180) * 1000)}'
    assert [(n.group_key, n.idempotency_key, n.kind) for n in first] == [
        (g1, g1 + "#1", NotificationKind.FIRING),
        (g1, g1 + "#2", NotificationKind.UPDATE),
        (g1, g1 + "#3", NotificationKind.RESOLVED),
        (g2, g2 + "#1", NotificationKind.FIRING),
    ]
    assert first[1].meta == {"reason": "change", "seq": "2", "group": 'default{group="a"}'}
    assert all(n.route == "default" for n in first)


def test_skipped_rule_keeps_its_alerts():
    state, log, _ = run([(0, [r("fast")]), (60, []), (120, [])], skipped={60: frozenset({"fast"})})
    assert log == [(0, "firing", ("fast/a:firing",)), (120, "resolved", ("fast/a:resolved",))]


def test_alert_fields_and_timestamps():
    state, _, raw = run([(0, [r("lag")]), (60, [r("lag")])])
    [a] = raw[0].alerts
    assert (a.active_since, a.firing_since, a.value, a.bound, a.summary) == (T0, T0 + 60, 42.0, 10.0, "lag a")
    assert [x.state for x in state.active()] == [AlertState.FIRING]


# -------------------------------------------------------------------------------------------- silences

SILENCE_A = Silence(parse_matchers("rule=fast group=a"), starts_at=T0, ends_at=T0 + 100, id="s1")


@pytest.mark.parametrize(
    ("n", "what", "steps", "notes", "final"),
    [
        (
            1,
            "a silenced alert fires without a word; when the silence ends, it is announced",
            [(0, [r("fast")]), (60, [r("fast")]), (100, [r("fast")])],
            [(100, "firing", ("fast/a:firing",))],
            {"fast/a": "firing"},
        ),
        (
            2,
            "only the unsilenced member of a group is shown",
            [(0, [r("fast"), r("fast2")])],
            [(0, "firing", ("fast2/a:firing",))],
            {"fast/a": "firing", "fast2/a": "firing"},
        ),
        (
            3,
            "a silence that ends after the alert resolved says nothing",
            [(0, [r("fast")]), (60, [r("fast", breaching=False)]), (100, []), (200, [])],
            [],
            {},
        ),
        (
            4,
            "a silenced alert's changes do not disturb the open incident of its group",
            [
                (0, [r("fast2")]),
                (30, [r("fast2"), r("fast")]),
                (90, [r("fast2"), r("fast")]),
                (100, [r("fast2"), r("fast")]),
            ],
            [(0, "firing", ("fast2/a:firing",)), (100, "update", ("fast/a:firing", "fast2/a:firing"))],
            {"fast/a": "firing", "fast2/a": "firing"},
        ),
        (
            5,
            "other groups are not silenced",
            [(0, [r("fast", "a"), r("fast", "b")])],
            [(0, "firing", ("fast/b:firing",))],
            {"fast/a": "firing", "fast/b": "firing"},
        ),
    ],
)
def test_silence_table(n, what, steps, notes, final):
    state, log, _ = run(steps, silences=(SILENCE_A,))
    assert log == notes, f"{n}: {what}"
    assert states(state) == final, f"{n}: {what}"


def test_silence_added_while_firing_then_alert_resolves_closes_quietly():
    state, log, _ = run([(0, [r("fast")])])
    later = Silence(parse_matchers("rule=fast"), starts_at=T0 + 10, ends_at=T0 + 1000, id="s2")
    state, log2, _ = run(
        [(60, [r("fast", breaching=False)]), (120, []), (700, [])], silences=(later,), state=state
    )
    assert log == [(0, "firing", ("fast/a:firing",))] and log2 == []
    assert state.groups == {} and state.alerts == {}


def test_from_dict_rejects_an_unknown_version():
    with pytest.raises(ValueError, match="version"):
        LifecycleState.from_dict({"version": 99})
