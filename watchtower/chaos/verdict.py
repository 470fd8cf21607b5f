"""Conservation by read-back: was every injected record handled as the contract says? Pure.

Input: what was sent (one `Expected` per record, keyed by its Kafka (partition, offset) from the delivery
report) and what the sinks hold (`Found`: the rows of the Delta `events`, `late` and `dlq` tables and the
DLQ topic, each at the source (partition, offset) it came from). Never the job's own counters: a pipeline
that drops a valid event as a "duplicate" still adds up in its `batches` table, but its `events` table
lacks the row.

The outcome a record must have (`Expected.outcomes`, one or more accepted):

    events    exactly one `events` row at its offset, nothing in `late` or `dlq`
    late      exactly one `late` row, nothing elsewhere
    dlq       exactly one `dlq` row whose reason starts with `Expected.reason`, and (when the DLQ topic
              was read) one DLQ-topic record with the same source offset and reason
    none      no row anywhere: an exact duplicate, or a control event (canary, marker)

Like Jepsen's checker, anomalies are named per kind of record with their first examples: `missing` (the
accepted outcome is not there: lost, or found in the wrong place) and `extra` (more rows than one, or a
row where none belongs). Rows at offsets nobody expected are `unexpected` (only judged when the expected
set covers every record of the topic).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

TABLES = ("events", "late", "dlq")
OUTCOMES = ("events", "late", "dlq", "none")
EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class Expected:
    partition: int
    offset: int
    kind: str  # what was injected: valid, late, duplicate, malformed:<sub>, control, future, ...
    outcomes: tuple[str, ...]  # accepted outcomes, from OUTCOMES
    reason: str | None = None  # for dlq: the failure_reason prefix
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Row:
    """One sink row at a source offset. `table`: events | late | dlq | dlq_topic."""

    table: str
    partition: int
    offset: int
    event_id: str | None = None
    reason: str | None = None


@dataclass
class Found:
    """What the sinks hold, indexed by source (partition, offset)."""

    rows: dict[tuple[int, int], list[Row]] = field(default_factory=lambda: defaultdict(list))
    dlq_topic_read: bool = False
    read: Counter[str] = field(default_factory=Counter)  # rows read per table

    @classmethod
    def of(cls, rows: Iterable[Row], dlq_topic_read: bool = False) -> Found:
        f = cls(dlq_topic_read=dlq_topic_read)
        for r in rows:
            f.rows[(r.partition, r.offset)].append(r)
            f.read[r.table] += 1
        return f


@dataclass(frozen=True)
class Anomaly:
    partition: int
    offset: int
    kind: str
    expected: tuple[str, ...]
    found: tuple[str, ...]  # the tables holding a row at this offset (dlq rows with their reason)
    event_id: str | None = None

    def describe(self) -> str:
        eid = f" event {self.event_id}" if self.event_id else ""
        got = ", ".join(self.found) or "nothing"
        return f"{self.kind}{eid} at partition {self.partition} offset {self.offset}: expected {'|'.join(self.expected)}, found {got}"


@dataclass
class KindVerdict:
    expected: int = 0
    found: int = 0
    missing: int = 0
    extra: int = 0
    first_missing: list[Anomaly] = field(default_factory=list)
    first_extra: list[Anomaly] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.extra == 0


@dataclass
class Conservation:
    kinds: dict[str, KindVerdict]
    unexpected: int = 0
    first_unexpected: list[Row] = field(default_factory=list)
    read: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.unexpected == 0 and all(k.ok for k in self.kinds.values())

    @property
    def checked(self) -> int:
        return sum(k.expected for k in self.kinds.values())

    def first_missing(self) -> Anomaly | None:
        for k in sorted(self.kinds):
            if self.kinds[k].first_missing:
                return self.kinds[k].first_missing[0]
        return None

    def summary(self) -> str:
        if self.ok:
            return f"conservation OK: {self.checked} records, each where the contract puts it"
        parts = []
        for name, k in sorted(self.kinds.items()):
            if not k.ok:
                first = (k.first_missing or k.first_extra)[0].describe()
                parts.append(f"{name}: {k.missing} missing, {k.extra} extra of {k.expected} (first: {first})")
        if self.unexpected:
            r = self.first_unexpected[0]
            parts.append(
                f"{self.unexpected} rows at offsets nobody sent (first: {r.table} partition {r.partition} offset {r.offset})"
            )
        return "conservation FAILED: " + "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "read": self.read,
            "kinds": {
                name: {
                    "expected": k.expected,
                    "found": k.found,
                    "missing": k.missing,
                    "extra": k.extra,
                    "first_missing": [a.describe() for a in k.first_missing],
                    "first_extra": [a.describe() for a in k.first_extra],
                }
                for name, k in sorted(self.kinds.items())
            },
            "unexpected": self.unexpected,
            "first_unexpected": [asdict(r) for r in self.first_unexpected],
            "summary": self.summary(),
        }


def _label(r: Row) -> str:
    return f"{r.table}:{r.reason}" if r.reason else r.table


def _matches(e: Expected, rows: Sequence[Row], dlq_topic_read: bool) -> tuple[bool, bool]:
    """(the record has an accepted outcome, it also has rows that do not belong: a second row or another table)."""
    by_table = Counter(r.table for r in rows)
    stored = {t: by_table.get(t, 0) for t in TABLES}
    for outcome in e.outcomes:
        if outcome == "none":
            if not any(stored.values()) and not by_table.get("dlq_topic"):
                return True, False
            continue
        if stored[outcome] == 0:
            continue
        if outcome == "dlq":
            reasons = [r.reason or "" for r in rows if r.table == "dlq"]
            if e.reason is not None and not any(x.startswith(e.reason) for x in reasons):
                continue
            if dlq_topic_read:
                topic = [r.reason or "" for r in rows if r.table == "dlq_topic"]
                if not topic or (e.reason is not None and not any(x.startswith(e.reason) for x in topic)):
                    continue
                extra_topic = len(topic) > 1
            else:
                extra_topic = False
        else:
            extra_topic = by_table.get("dlq_topic", 0) > 0
        others = sum(n for t, n in stored.items() if t != outcome)
        return True, stored[outcome] > 1 or others > 0 or extra_topic
    return False, False


def _anomaly(e: Expected, rows: Sequence[Row]) -> Anomaly:
    return Anomaly(
        e.partition, e.offset, e.kind, e.outcomes, tuple(sorted(_label(r) for r in rows)), e.event_id
    )


def judge(expected: Iterable[Expected], found: Found, complete: bool = False) -> Conservation:
    """The conservation verdict. `complete`: `expected` covers every record of the topic, so rows at any
    other offset are anomalies too (`unexpected`)."""
    kinds: dict[str, KindVerdict] = defaultdict(KindVerdict)
    seen: set[tuple[int, int]] = set()
    for e in expected:
        key = (e.partition, e.offset)
        seen.add(key)
        k = kinds[e.kind]
        k.expected += 1
        rows = found.rows.get(key, ())
        ok, extra = _matches(e, rows, found.dlq_topic_read)
        anomaly = partial(_anomaly, e, rows)
        if ok:
            k.found += 1
        elif "none" in e.outcomes and rows:
            k.extra += 1  # a row where none belongs (a duplicate stored twice)
            if len(k.first_extra) < EXAMPLES:
                k.first_extra.append(anomaly())
            continue
        else:
            k.missing += 1
            if len(k.first_missing) < EXAMPLES:
                k.first_missing.append(anomaly())
        if extra:
            k.extra += 1
            if len(k.first_extra) < EXAMPLES:
                k.first_extra.append(anomaly())
    unexpected, first = 0, []
    if complete:
        for key, rows in sorted(found.rows.items()):
            if key not in seen:
                unexpected += len(rows)
                first.extend(rows[: EXAMPLES - len(first)])
    return Conservation(dict(kinds), unexpected, first[:EXAMPLES], dict(found.read))


def count_by_outcome(expected: Iterable[Expected]) -> Mapping[str, int]:
    """How many records were sent per kind (for reports)."""
    return Counter(e.kind for e in expected)
