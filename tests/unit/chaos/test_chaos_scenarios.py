"""Scenario files: the shipped ones validate, bad ones are reported with file:line and the fix; the
method's schedule; the steady-state probes; the detection verdict; JUnit XML."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from watchtower.chaos.detection import judge_detection
from watchtower.chaos.faults import params_models
from watchtower.chaos.pager import Page
from watchtower.chaos.report import junit_xml
from watchtower.chaos.runner import RunResult, schedule
from watchtower.chaos.scenario import AlertExpectation, Probe, Scenario, check_scenarios
from watchtower.chaos.steady import steady
from watchtower.core.types import Reading, Sample, labels
from watchtower.rules.config import check_rules

ROOT = Path(__file__).resolve().parents[3]


def test_every_shipped_scenario_validates_against_the_chaos_rules() -> None:
    ruleset, problems = check_rules(ROOT / "chaos" / "rules")
    assert not problems
    scenarios, problems = check_scenarios(
        ROOT / "chaos" / "scenarios", params_models(), {r.name for r in ruleset.rules}
    )
    assert not problems, problems
    assert len(scenarios) >= 12
    used = {s.fault for sc in scenarios for s in sc.method}
    assert used == set(params_models()), f"faults without a scenario: {set(params_models()) - used}"


BAD = [
    # (case, yaml, expected problem fragment with its line)
    (
        "1 unknown fault",
        "name: x1\npurpose: a purpose here\nmethod:\n  - {fault: late_event}\n",
        ":4: method.0.fault: unknown fault 'late_event'; did you mean late_events?",
    ),
    (
        "2 bad fault param",
        "name: x2\npurpose: a purpose here\nmethod:\n  - fault: late_events\n    with: {count: 0}\n",
        ":5: method.0.with.count:",
    ),
    (
        "3 unknown param",
        "name: x3\npurpose: a purpose here\nmethod:\n  - fault: duplicates\n    with: {cnt: 3}\n",
        "unknown field; duplicates takes: count, mode",
    ),
    ("4 missing method", "name: x4\npurpose: a purpose here\n", ": method: required; add it"),
    (
        "5 typo in a section",
        "name: x5\npurpose: a purpose here\nmethods: []\nmethod: [{fault: malformed}]\n",
        ":3: methods: unknown field; did you mean method?",
    ),
    (
        "6 probe without tolerance",
        "name: x6\npurpose: a purpose here\nsteady_state:\n  probes:\n    - {name: p, metric: m}\nmethod: [{fault: malformed}]\n",
        "give the tolerance",
    ),
    (
        "7 every without until",
        "name: x7\npurpose: a purpose here\nmethod:\n  - {fault: malformed, every: 5s}\n",
        ":4: method.0: every: needs until:",
    ),
    (
        "8 unknown alert rule",
        "name: x8\npurpose: a purpose here\nmethod: [{fault: malformed}]\nexpect:\n  alerts:\n    - {rule: late-share-hi, within: 10s}\n",
        ":6: expect.alerts.0.rule: no rule 'late-share-hi'",
    ),
    ("9 not yaml", "name: [\n", "not valid YAML"),
]


@pytest.mark.parametrize("case,text,fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_scenarios_are_reported_with_line_and_fix(
    case: str, text: str, fragment: str, tmp_path: Path
) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(text)
    scenarios, problems = check_scenarios(f, params_models(), {"late-share-high"})
    assert not scenarios
    assert any(fragment in p for p in problems), problems
    assert all(p.startswith(str(f)) for p in problems)


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    for n in ("a", "b"):
        (tmp_path / f"{n}.yaml").write_text(
            "name: same\npurpose: a purpose here\nmethod: [{fault: malformed}]\n"
        )
    scenarios, problems = check_scenarios(tmp_path, params_models())
    assert len(scenarios) == 1 and "already used by" in problems[0]


def sc(method: list[dict]) -> Scenario:
    return Scenario.model_validate({"name": "s", "purpose": "a purpose here", "method": method})


SCHEDULES = [
    ("1 one data fault", [{"fault": "malformed"}], [(0.0, "start", 0)]),
    (
        "2 a pause with a duration",
        [{"fault": "pause_process", "at": "2s", "duration": "5s", "with": {"target": "broker"}}],
        [(2.0, "start", 0), (7.0, "stop", 0)],
    ),
    (
        "3 repeated",
        [
            {
                "fault": "pause_process",
                "every": "10s",
                "until": "20s",
                "duration": "2s",
                "with": {"target": "redis"},
            }
        ],
        [
            (0.0, "start", 0),
            (2.0, "stop", 0),
            (10.0, "start", 0),
            (12.0, "stop", 0),
            (20.0, "start", 0),
            (22.0, "stop", 0),
        ],
    ),
    (
        "4 a stop before a start at the same time",
        [
            {"fault": "malformed", "at": "5s"},
            {"fault": "pause_process", "duration": "5s", "with": {"target": "spark"}},
        ],
        [(0.0, "start", 1), (5.0, "stop", 1), (5.0, "start", 0)],
    ),
]


@pytest.mark.parametrize("case,method,expected", SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_schedule(case: str, method: list[dict], expected: list) -> None:
    assert schedule(sc(method).method) == expected


def reading(*samples: Sample) -> Reading:
    return Reading(collector="c", at=0.0, samples=samples)


def test_steady_state_probes() -> None:
    r = reading(
        Sample("lag", labels(group="a"), 3.0),
        Sample("lag", labels(group="b"), 12.0),
        Sample("p95", labels(), 0.4),
    )
    probes = [
        Probe(name="worst lag", metric="lag", max=10),
        Probe(name="lag of a", metric='lag{group="a"}', max=10),
        Probe(name="p95", metric="p95", min=0.1, max=1),
        Probe(name="absent", metric="nothing", max=1),
        Probe(name="absent ok", metric="nothing", max=1, missing_ok=True),
    ]
    assert [(p.value, p.holds) for p in steady(probes, [r])] == [
        (12.0, False),
        (3.0, True),
        (0.4, True),
        (None, False),
        (None, True),
    ]


T0, END = 1000.0, 1020.0
DETECTION = [
    # (case, pages (at, rule, state), expected alerts, tolerate, ok, false positives)
    (
        "1 paged in time and resolved",
        [(T0 + 3, "late", "firing"), (END + 10, "late", "resolved")],
        [("late", 30, 60)],
        [],
        True,
        [],
    ),
    ("2 never paged", [], [("late", 30, None)], [], False, []),
    ("3 paged too late", [(T0 + 40, "late", "firing")], [("late", 30, None)], [], False, []),
    ("4 never resolved", [(T0 + 3, "late", "firing")], [("late", 30, 60)], [], False, []),
    (
        "5 another rule paged",
        [(T0 + 3, "late", "firing"), (T0 + 4, "lag", "firing")],
        [("late", 30, None)],
        [],
        False,
        ["lag"],
    ),
    (
        "6 tolerated",
        [(T0 + 3, "late", "firing"), (T0 + 4, "lag", "firing")],
        [("late", 30, None)],
        ["lag"],
        True,
        [],
    ),
    (
        "7 a page before the fault does not count",
        [(T0 - 5, "late", "firing")],
        [("late", 30, None)],
        [],
        False,
        [],
    ),
    ("8 nothing expected, nothing paged", [], [], [], True, []),
]


@pytest.mark.parametrize("case,pages,expected,tolerate,ok,fps", DETECTION, ids=[d[0] for d in DETECTION])
def test_detection(case, pages, expected, tolerate, ok, fps) -> None:
    got = judge_detection(
        [
            Page(at, "firing" if s == "firing" else "resolved", rule, s, f"k{i}")
            for i, (at, rule, s) in enumerate(pages)
        ],
        [AlertExpectation(rule=r, within=w, resolve_within=rw) for r, w, rw in expected],
        T0,
        END,
        tolerate,
    )
    assert got.ok is ok, got.summary()
    assert got.false_positives == fps


def test_junit_has_one_case_per_scenario_and_failures_with_reasons() -> None:
    good = RunResult("good", "p", "r1", 0.0, ended_at=2.0)
    bad = RunResult("bad", "p", "r2", 0.0, ended_at=3.0, errors=["FaultError: broker is not running"])
    root = ET.fromstring(junit_xml([good, bad]))
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["good"].find("failure") is None
    assert "broker is not running" in cases["bad"].find("failure").text
