"""Does every produced event add up? Pure arithmetic over the generator's manifest and the pipeline's
per-batch accounting; no I/O, so it is tested with plain numbers.

The per-batch accounting is the job's own and adds up by construction; the demo's verdict is the read-back
(`expected_outcomes` here, judged by `watchtower.chaos.verdict` against what the sinks hold)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.generator import DUPLICATE, LATE, MALFORMED, MALFORMED_KINDS, VALID
from watchtower.chaos.verdict import Expected

OUTCOMES = ("sink_rows", "dlq_rows", "late_rows", "duplicate_rows", "control_rows")


@dataclass(frozen=True)
class PipelineTotals:
    """Sums over the Spark job's `batches` table."""

    batches: int = 0
    failed_batches: int = 0
    input_rows: int = 0
    sink_rows: int = 0
    dlq_rows: int = 0
    late_rows: int = 0
    duplicate_rows: int = 0
    control_rows: int = 0

    @classmethod
    def from_rows(cls, rows: list[Mapping[str, Any]]) -> PipelineTotals:
        sums = {k: sum(int(r.get(k) or 0) for r in rows) for k in ("input_rows", *OUTCOMES)}
        failed = sum(1 for r in rows if str(r.get("status", "ok")) != "ok")
        return cls(batches=len(rows), failed_batches=failed, **sums)


@dataclass(frozen=True)
class Accounting:
    produced: dict[str, int]
    pipeline: PipelineTotals
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def adds_up(self) -> bool:
        return all(self.checks.values())

    def as_dict(self) -> dict[str, Any]:
        p = self.pipeline
        return {
            "produced": self.produced,
            "in_sink": p.sink_rows,
            "in_dlq": p.dlq_rows,
            "late": p.late_rows,
            "deduplicated": p.duplicate_rows,
            "control": p.control_rows,
            "pipeline": asdict(p),
            "checks": self.checks,
            "adds_up": self.adds_up,
        }


def account(
    produced: Mapping[str, int], delivered: int, failed: int, totals: PipelineTotals, canaries: int = 0
) -> Accounting:
    """`produced` holds the generator's counts by kind (valid, late, duplicate, malformed, marker);
    `canaries` is how many canary events the watchtower daemon wrote into the same topic.

    Conservation: every delivered record was read exactly once by the pipeline, and every record read
    ended in exactly one of sink, DLQ, late, deduplicated, or control (markers and canaries).
    """
    sent = sum(produced.values())
    business = sent - produced.get("marker", 0)
    outcomes = totals.sink_rows + totals.dlq_rows + totals.late_rows + totals.duplicate_rows
    checks = {
        "every_record_delivered": failed == 0 and delivered == sent,
        "pipeline_read_every_record_once": totals.input_rows == delivered + canaries,
        "control_rows_are_markers_and_canaries": totals.control_rows == produced.get("marker", 0) + canaries,
        "each_read_record_has_one_outcome": totals.input_rows == outcomes + totals.control_rows,
        "business_events_add_up": business == outcomes,
        "no_failed_batches": totals.failed_batches == 0,
        # Malformed events can only end in the DLQ, so the DLQ holds at least them.
        "malformed_in_dlq": totals.dlq_rows >= produced.get("malformed", 0),
    }
    return Accounting({**produced, "canary": canaries}, totals, checks)


def expected_outcomes(records: list[tuple[int, int, str, str | None, str | None]]) -> list[Expected]:
    """What the contract says about each delivered generator record (`Manifest.records`), for the read-back
    verdict (`watchtower.chaos.verdict`).

    valid -> `events`; malformed -> `dlq` with its reason; marker -> nothing. Two kinds accept two outcomes,
    because the generator cannot know the watermark a record will meet: a late event in a batch before
    any watermark exists is on time (`events`), and an exact copy of an event older than the watermark
    is itself late (`late`) rather than deduplicated (`none`).
    """
    out = []
    for partition, offset, kind, sub, event_id in records:
        if kind == VALID:
            e = Expected(partition, offset, kind, ("events",), None, event_id)
        elif kind == LATE:
            e = Expected(partition, offset, kind, ("late", "events"), None, event_id)
        elif kind == DUPLICATE:
            e = Expected(partition, offset, kind, ("none", "late"), None, event_id)
        elif kind == MALFORMED:
            e = Expected(
                partition, offset, f"malformed:{sub}", ("dlq",), MALFORMED_KINDS.get(sub or ""), event_id
            )
        else:  # marker
            e = Expected(partition, offset, "control", ("none",), None, event_id)
        out.append(e)
    return out
