import pytest

from watchtower.demo.accounting import PipelineTotals, account

PRODUCED = {"valid": 90, "late": 5, "duplicate": 3, "malformed": 2, "marker": 6}


def totals(**kw):
    base = dict(
        batches=4, input_rows=106, sink_rows=92, dlq_rows=2, late_rows=3, duplicate_rows=3, control_rows=6
    )
    base.update(kw)
    return PipelineTotals(**base)


def test_a_run_that_adds_up():
    acc = account(PRODUCED, delivered=106, failed=0, totals=totals())
    assert acc.adds_up, acc.checks
    assert acc.as_dict()["in_sink"] == 92 and acc.as_dict()["adds_up"] is True


@pytest.mark.parametrize(
    "case, kwargs, delivered, failed, broken",
    [
        (1, {"sink_rows": 91}, 106, 0, {"each_read_record_has_one_outcome", "business_events_add_up"}),
        (
            2,
            {"input_rows": 105, "sink_rows": 91},
            106,
            0,
            {"pipeline_read_every_record_once", "business_events_add_up"},
        ),
        (3, {}, 105, 1, {"every_record_delivered", "pipeline_read_every_record_once"}),
        (4, {"dlq_rows": 1, "sink_rows": 93}, 106, 0, {"malformed_in_dlq"}),
        (5, {"failed_batches": 1}, 106, 0, {"no_failed_batches"}),
        (
            6,
            {"control_rows": 5, "sink_rows": 93},
            106,
            0,
            {"business_events_add_up", "control_rows_are_markers_and_canaries"},
        ),
    ],
)
def test_each_kind_of_loss_is_caught(case, kwargs, delivered, failed, broken):
    acc = account(PRODUCED, delivered=delivered, failed=failed, totals=totals(**kwargs))
    assert not acc.adds_up
    assert {k for k, ok in acc.checks.items() if not ok} == broken, case


def test_totals_from_batch_rows():
    rows = [
        {
            "status": "ok",
            "input_rows": 10,
            "sink_rows": 7,
            "dlq_rows": 1,
            "late_rows": 1,
            "duplicate_rows": 1,
            "control_rows": 0,
        },
        {"status": "batch_failed:ValueError", "input_rows": 4, "dlq_rows": 4},
    ]
    t = PipelineTotals.from_rows(rows)
    assert (t.batches, t.failed_batches, t.input_rows, t.dlq_rows, t.sink_rows) == (2, 1, 14, 5, 7)


def test_canaries_are_control_rows_read_on_top_of_the_generator():
    acc = account(
        PRODUCED, delivered=106, failed=0, totals=totals(input_rows=110, control_rows=10), canaries=4
    )
    assert acc.adds_up, acc.checks
    assert acc.produced["canary"] == 4
    assert not account(
        PRODUCED, delivered=106, failed=0, totals=totals(input_rows=110, control_rows=10)
    ).adds_up


def test_expected_outcomes_of_generator_records():
    from watchtower.demo.accounting import expected_outcomes

    got = expected_outcomes(
        [
            (0, 1, "valid", None, "a"),
            (0, 2, "late", None, "b"),
            (0, 3, "duplicate", None, "a"),
            (1, 1, "malformed", "negative_amount", "c"),
            (1, 2, "malformed", "bad_json", None),
            (2, 9, "marker", None, "m"),
        ]
    )
    assert [(e.kind, e.outcomes, e.reason) for e in got] == [
        ("valid", ("events",), None),
        ("late", ("late", "events"), None),
        ("duplicate", ("none", "late"), None),
        ("malformed:negative_amount", ("dlq",), "bad_value:amount"),
        ("malformed:bad_json", ("dlq",), "bad_json"),
        ("control", ("none",), None),
    ]
