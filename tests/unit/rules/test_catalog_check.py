"""Rules that can never fire are errors: selectors' metric and label names checked against the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from watchtower.cli.app import app
from watchtower.rules.config import check_rules


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n" + body)
    return path


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # a misspelt metric: the issue's own example
        (
            "  - {name: a, kind: threshold, selector: 'watchtower_consumer_lag_mesages{group=\"g\"}', bound: 1}\n",
            "rules.0.selector: metric 'watchtower_consumer_lag_mesages' is not in the catalog, so this rule can never fire; "
            "did you mean watchtower_consumer_lag_messages?",
        ),
        # a misspelt label
        (
            "  - {name: a, kind: threshold, selector: 'watchtower_consumer_lag_messages{gruop=\"g\"}', bound: 1}\n",
            "rules.0.selector: watchtower_consumer_lag_messages has no label 'gruop'; did you mean group?",
        ),
        # a label the metric does not have at all
        (
            "  - {name: a, kind: threshold, selector: 'watchtower_dlq_messages{partition=\"0\"}', bound: 1}\n",
            "rules.0.selector: watchtower_dlq_messages has no label 'partition'; no close match (its labels: topic)",
        ),
        # by: a label no selected metric has
        (
            "  - {name: a, kind: threshold, selector: watchtower_consumer_lag_messages, by: [grup], bound: 1}\n",
            "rules.0.by: no selected metric has the label 'grup'; did you mean group?",
        ),
        # nested selectors: burn_rate counters and throughput signals
        (
            "  - {name: a, kind: burn_rate, total: watchtower_e2e_event_total, bad: watchtower_e2e_events_slow_total, objective: 0.99}\n",
            "rules.0.total: metric 'watchtower_e2e_event_total' is not in the catalog",
        ),
        (
            "  - {name: a, kind: throughput_floor, output: {selector: watchtower_record_in_per_second}, "
            "input: watchtower_topic_produce_rate_messages_per_second, floor: 1, window: 1m}\n",
            "rules.0.output.selector: metric 'watchtower_record_in_per_second' is not in the catalog, so this rule can never "
            "fire; did you mean watchtower_records_in_per_second?",
        ),
    ],
)
def test_unknown_names_are_problems_with_the_closest_name(tmp_path: Path, body: str, expected: str) -> None:
    _, problems = check_rules(write(tmp_path, body))
    assert any(expected in p for p in problems), problems
    assert all(p.startswith(f"{tmp_path / 'rules.yaml'}:2:") for p in problems), problems


def test_known_names_and_the_open_alert_state_labels_pass(tmp_path: Path) -> None:
    body = (
        '  - {name: a, kind: threshold, selector: \'watchtower_consumer_lag_messages{group="g", topic=~"o.*"}\', by: [group], bound: 1}\n'
        '  - {name: b, kind: threshold, selector: \'watchtower_alert_state{rule="a", group="g"}\', by: [group], bound: 1}\n'
        "  - {name: c, kind: throughput_floor, output: watchtower_records_in_per_second, "
        "input: watchtower_topic_produce_rate_messages_per_second, by: [job], floor: 1, window: 1m}\n"
    )
    ruleset, problems = check_rules(write(tmp_path, body))
    assert problems == [] and len(ruleset.rules) == 3


def test_rules_check_cli_rejects_the_typo(tmp_path: Path) -> None:
    path = write(
        tmp_path, "  - {name: a, kind: threshold, selector: watchtower_consumer_lag_mesages, bound: 1}\n"
    )
    result = CliRunner().invoke(app, ["rules", "check", str(path)])
    assert result.exit_code == 1
    assert "did you mean watchtower_consumer_lag_messages?" in result.output
