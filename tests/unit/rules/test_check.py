"""`watchtower rules check`: every problem, with file:line and the fix; the shipped rules pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from watchtower.alerting.lifecycle import RoutePolicy, RuleTiming
from watchtower.cli.app import app
from watchtower.config.yaml_source import ConfigError
from watchtower.rules.config import check_rules, load_rules
from watchtower.rules.kinds import KINDS

REPO = Path(__file__).resolve().parents[3]

BROKEN = """\
rules:
  - name: lag-high
    kind: thresold
    selector: watchtower_consumer_lag_messages
    bound: 10000
  - name: lag-seconds
    kind: threshold
    selector: watchtower_consumer_lag_seconds
    bound: 30
    for: 5x
  - name: dlq
    kind: rate
    selector: watchtower_dlq_records_total
    window: 5m
  - name: e2e
    kind: threshold
    selector: watchtower_e2e_latency_seconds{quantile=0.99}
    bound: 5
  - name: typo
    kind: growth
    selector: watchtower_consumer_lag_messages
    factr: 2
    factor: 2
    window: 10m
"""


def write(tmp_path: Path, text: str, name: str = "broken.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_broken_file_reports_every_problem_with_line_and_fix(tmp_path):
    path = write(tmp_path, BROKEN)
    _, problems = check_rules(path)
    f = str(path)
    expected = [
        f"{f}:3: rules.0.kind: unknown kind 'thresold'; did you mean threshold? use one of: burn_rate, consumer_status",
        f"{f}:10: rules.1.for: '5x' is not a duration: write it as 500ms, 30s, 10m, 2h or 1d",
        f"{f}:11: rules.2.bound: required; add it",
        f"{f}:17: rules.3.selector: cannot read label matcher at 'quantile=0.99'; write matchers as {{label=\"value\"",
        f"{f}:22: rules.4.factr: unknown field; did you mean factor? fields of this kind:",
    ]
    assert len(problems) == len(expected), problems
    for got, want in zip(problems, expected, strict=True):
        assert got.startswith(want), (got, want)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "rules:\n  - name: x\n    selector: m\n",
            "x.yaml:2: rules.0.kind: required; add kind: with one of:",
        ),
        (
            "rules:\n  - name: x\n    kind: threshold\n    selector: m\n    bound: 1\n    route: pager\n",
            "x.yaml:6: route 'pager' is not defined; define it under routes: or use one of: default",
        ),
        (
            "rules:\n  - {name: x, kind: threshold, selector: m, bound: 1}\n  - {name: x, kind: threshold, selector: m, bound: 2}\n",
            "x.yaml:3: rules.1.name: 'x' is already defined at",
        ),
        (
            "rules:\n  - name: x\n    kind: threshold\n    selector: m\n    bound: 1\n    summary: '{valeu}'\n",
            "x.yaml:2: rules.0: summary uses {valeu}, which this rule kind does not provide; use one of: bound, labels, op, rule, value",
        ),
        (
            "rules:\n  - name: x\n    kind: threshold\n    selector: m\n    bound: 1\n    by: [group]\n    aggregate: none\n",
            "x.yaml:2: rules.0: `by` groups series for an aggregate",
        ),
        (
            "rules:\n  - name: x\n    kind: threshold\n    selector: 'm{group=~\"(\"}'\n    bound: 1\n",
            "x.yaml:4: rules.0.selector: group=~'(': not a valid regex",
        ),
        (
            "rules:\n  - name: x\n    kind: threshold\n    selector: m\n    bound: 1\n    severity: pager\n",
            "x.yaml:6: rules.0.severity: Input should be 'page', 'ticket' or 'info'",
        ),
        (
            "routes:\n  oncall:\n    group_wait: soon\nrules: []\n",
            "x.yaml:3: routes.oncall.group_wait: 'soon' is not a duration",
        ),
        (
            "alerts:\n  - name: x\n",
            "x.yaml:1: alerts: unknown section; a rule file has only rules:, routes: and grafana:",
        ),
        ("rules: [\n", "x.yaml:2: not valid YAML"),
        ("", "x.yaml:1: the file is empty; add a rules: list"),
        (
            "rules:\n  - name: slo\n    kind: burn_rate\n    total: t\n    objective: 0.99\n",
            "x.yaml:2: rules.0: give exactly one of `good` (events within the SLO) or `bad`",
        ),
    ],
)
def test_single_problems(tmp_path, text, expected):
    _, problems = check_rules(write(tmp_path, text, "x.yaml"))
    assert any(expected in p for p in problems), problems


def test_missing_path_and_empty_directory(tmp_path):
    assert "no such file or directory" in check_rules(tmp_path / "nope.yaml")[1][0]
    assert "no *.yaml or *.yml files" in check_rules(tmp_path)[1][0]


def test_directory_merges_files_and_routes(tmp_path):
    write(tmp_path, "routes:\n  oncall: {group_by: [group], group_wait: 10s}\nrules: []\n", "a.yaml")
    write(
        tmp_path,
        "rules:\n  - {name: x, kind: threshold, selector: watchtower_consumer_lag_messages, bound: 1, for: 1m, keep_firing_for: 2m, route: oncall}\n",
        "b.yml",
    )
    ruleset = load_rules(tmp_path)
    cfg = ruleset.lifecycle_config()
    assert cfg.timing("x") == RuleTiming(for_=60, keep_firing_for=120, route="oncall")
    assert cfg.policy("oncall") == RoutePolicy(
        group_by=("group",), group_wait=10, group_interval=300, repeat_interval=14400
    )
    with pytest.raises(ConfigError):
        load_rules(write(tmp_path, BROKEN, "c.yaml"))


def test_shipped_default_rules_pass_and_cover_all_five_signals():
    ruleset = load_rules(REPO / "alerts")
    metrics = " ".join(str(v) for r in ruleset.rules for v in r.model_dump().values())
    for signal in ("lag", "e2e", "dlq", "records_in_per_second", "checkpoint_duration"):
        assert signal in metrics, signal
    assert {r.kind for r in ruleset.rules} == set(KINDS)


def test_cli_exit_codes_and_output(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(app, ["rules", "check", str(write(tmp_path, BROKEN))])
    assert bad.exit_code == 1
    assert "5 problem(s)" in bad.output and "broken.yaml:10: rules.1.for:" in bad.output
    good = runner.invoke(app, ["rules", "check", str(REPO / "alerts")])
    assert good.exit_code == 0, good.output
    assert "rules OK: 20 rules in 2 file(s)" in good.output


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_default_summary_renders_with_its_fields(kind):
    from watchtower.rules.base import _AnyLabels, render

    cls = KINDS[kind]
    sample = {"value": 1.0, "bound": 1.0, "labels": _AnyLabels(group="g"), "rule": "r", **cls.EXTRAS}
    assert render(cls.DEFAULT_SUMMARY, sample), kind
