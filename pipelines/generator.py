"""The order-event factory behind `watchtower pipeline generate`: pure, no I/O, no clock of its own.

Three pieces, each a function of its inputs (a seeded `random.Random`, `now` passed in), so the unit
tests pin them without a broker:

* `TokenBucket`: how many events may go out at `now` for a target rate. The producer asks once per
  loop turn and sends that many in one go, so the rate holds at 50k+/s without a sleep per event.
* `EventFactory`: turns a count into records (key, value bytes, kind) following the fault mix:
  duplicates resend the exact bytes of an earlier event (a recent one, or one sampled from the whole
  run so it lands in a later micro-batch), malformed records break the contract in one of
  `MALFORMED_KINDS` ways, late events carry `event_time = now - late_by`.
* `Manifest`: what was sent, by kind, and what the broker acknowledged; the ground truth the tests
  and the chaos verdicts compare the pipeline's output with.

The I/O (producer, progress, markers) lives in `pipelines/produce.py`.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from pipelines.events import DEFAULT_MAX_EVENT_BYTES, encode, format_event_time

VALID = "valid"
LATE = "late"
DUPLICATE = "duplicate"
MALFORMED = "malformed"
MARKER = "marker"
FUTURE = "future"  # stamped `future_by` ahead of now: beyond any sane skew bound (EventFactory only)
KINDS = (VALID, LATE, DUPLICATE, MALFORMED)

# Sub-kind -> the prefix of the reason `pipelines.events.validate` gives for it.
MALFORMED_KINDS: dict[str, str] = {
    "bad_json": "bad_json",
    "missing_field": "missing_field",
    "wrong_type": "wrong_type",
    "negative_amount": "bad_value:amount",
    "unknown_event_type": "unknown_event_type",
    "oversized": "oversized",
}

# A plausible order flow: most events create or pay for an order.
EVENT_TYPE_WEIGHTS: dict[str, float] = {
    "created": 0.40,
    "paid": 0.30,
    "shipped": 0.20,
    "cancelled": 0.06,
    "refunded": 0.04,
}


class Record(NamedTuple):
    key: bytes
    value: bytes
    kind: str
    sub_kind: str | None = None  # the malformed sub-kind
    event_id: str | None = None  # None for records without a readable id (bad JSON)


# uuid4 layout: version nibble 4, variant bits 10.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


class TokenBucket:
    """Tokens accrue at `rate` per second up to `burst`; `take` hands out whole tokens.

    `burst` bounds how far the sender catches up after a stall (a GC pause, a full producer queue):
    a short hiccup is made up for, a long one is not turned into a flood.
    """

    def __init__(self, rate: float, now: float, burst: float | None = None):
        if rate <= 0:
            raise ValueError("rate must be above zero")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate * 0.25)
        self._tokens = 0.0
        self._last = now

    def _refill(self, now: float) -> None:
        if now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now

    def take(self, now: float, limit: int) -> int:
        """Up to `limit` whole tokens available at `now` (0 if none yet); they are spent."""
        self._refill(now)
        n = min(int(self._tokens), max(0, limit))
        self._tokens -= n
        return n

    def wait(self, now: float) -> float:
        """Seconds from `now` until at least one whole token is available."""
        self._refill(now)
        return max(0.0, (1.0 - self._tokens) / self.rate)


def zipf_weights(users: int, skew: float) -> list[float]:
    """Cumulative weights for user ranks 1..users with popularity ~ 1/rank**skew (skew 0: uniform)."""
    return list(itertools.accumulate(1.0 / (rank**skew) for rank in range(1, users + 1)))


class EventFactory:
    """Records for the producer, following the fault mix. Deterministic for a given `rng`."""

    def __init__(
        self,
        rng: random.Random,
        users: int = 10_000,
        duplicate_ratio: float = 0.0,
        malformed_ratio: float = 0.0,
        late_ratio: float = 0.0,
        late_by: float = 3600.0,
        skew: float = 1.1,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        recent: int = 256,
        reservoir: int = 4096,
        future_ratio: float = 0.0,
        future_by: float = 365 * 86400.0,
    ):
        if duplicate_ratio + malformed_ratio + late_ratio + future_ratio > 1:
            raise ValueError("duplicate, malformed, late and future ratios add up to more than 1")
        self.rng = rng
        # Ids are random even under a seed: two seeded runs must not share event ids.
        self._id_bits = random.Random().getrandbits  # seeded from os.urandom
        self.user_ids = [f"u-{i}" for i in range(users)]
        self._cum = zipf_weights(users, skew)
        self._dup = duplicate_ratio
        self._mal = duplicate_ratio + malformed_ratio
        self._late = self._mal + late_ratio
        self._future = self._late + future_ratio
        self.late_by_ms = int(late_by * 1000)
        self.future_by_ms = int(future_by * 1000)
        self.max_event_bytes = max_event_bytes
        self._types = list(EVENT_TYPE_WEIGHTS)
        self._type_cum = list(itertools.accumulate(EVENT_TYPE_WEIGHTS.values()))
        self._malformed_kinds = list(MALFORMED_KINDS)
        # Sent events a duplicate may copy: the last few, and a uniform sample of the whole run.
        self._recent: deque[Record] = deque(maxlen=recent)
        self._reservoir: list[Record] = []
        self._reservoir_cap = reservoir
        self._kept = 0

    def batch(self, n: int, now_ms: int) -> list[Record]:
        """`n` records stamped at `now_ms` (late ones at `now_ms - late_by`, future ones at
        `now_ms + future_by`)."""
        rng = self.rng
        users = rng.choices(self.user_ids, cum_weights=self._cum, k=n)
        types = rng.choices(self._types, cum_weights=self._type_cum, k=n)
        on_time = format_event_time(now_ms)
        late = format_event_time(now_ms - self.late_by_ms)
        future = format_event_time(now_ms + self.future_by_ms)
        stamps = {VALID: on_time, LATE: late, FUTURE: future}
        out: list[Record] = []
        for user, event_type in zip(users, types, strict=True):
            u = rng.random()
            if u < self._dup and self._kept:
                out.append(self._duplicate())
                continue
            if self._dup <= u < self._mal:
                out.append(self._malformed(user, event_type, on_time))
                continue
            # a duplicate with nothing to copy: valid
            kind = (
                LATE if self._mal <= u < self._late else FUTURE if self._late <= u < self._future else VALID
            )
            event = self._event(user, event_type, stamps[kind])
            rec = Record(user.encode(), encode(event), kind, None, event["event_id"])
            if self._dup:
                self._remember(rec)
            out.append(rec)
        return out

    def _event(self, user: str, event_type: str, event_time: str) -> dict[str, Any]:
        # Built inline rather than through events.new_event: the time string is formatted once per
        # batch, which is most of the cost at 50k events/s.
        hexid = f"{(self._id_bits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"
        return {
            "event_id": hexid,
            "order_id": f"o-{hexid[:12]}",
            "user_id": user,
            "amount": int(self.rng.random() * 49_901 + 100) / 100,  # 1.00 .. 500.00, whole cents
            "event_type": event_type,
            "event_time": event_time,
        }

    def _remember(self, rec: Record) -> None:
        self._recent.append(rec)
        self._kept += 1
        if len(self._reservoir) < self._reservoir_cap:
            self._reservoir.append(rec)
        elif (
            self.rng.random() * self._kept < self._reservoir_cap
        ):  # reservoir sampling, one draw when skipped
            self._reservoir[self.rng.randrange(self._reservoir_cap)] = rec

    def _duplicate(self) -> Record:
        pool = self._recent if self.rng.random() < 0.5 else self._reservoir
        original = pool[self.rng.randrange(len(pool))]
        return original._replace(kind=DUPLICATE)

    def _malformed(self, user: str, event_type: str, event_time: str) -> Record:
        sub = self._malformed_kinds[self.rng.randrange(len(self._malformed_kinds))]
        event = self._event(user, event_type, event_time)
        key = user.encode()
        if sub == "bad_json":
            raw = encode(event)
            return Record(key, raw[: self.rng.randrange(1, len(raw) - 1)], MALFORMED, sub, None)
        if sub == "missing_field":
            del event[self.rng.choice(("order_id", "amount", "event_type", "event_time"))]
        elif sub == "wrong_type":
            name = self.rng.choice(("amount", "user_id", "event_time"))
            event[name] = str(event[name]) if name == "amount" else 12345
        elif sub == "negative_amount":
            event["amount"] = -event["amount"]
        elif sub == "unknown_event_type":
            event["event_type"] = "teleported"
        else:  # oversized: well-formed JSON, just too big for any consumer to accept
            event["note"] = "x" * (self.max_event_bytes + 1024)
        return Record(key, encode(event), MALFORMED, sub, event["event_id"])


@dataclass
class Manifest:
    """What a generator run sent and what the broker acknowledged. Plain data; `write` saves it as JSON.

    `counts` holds one entry per kind (`valid`, `late`, `duplicate`, `malformed`, `marker`); a
    duplicate's id is the id of the event it copies. `ids` is filled only when asked for (tests).
    """

    track_ids: bool = False
    # (partition, offset, kind, sub_kind, event_id) of every delivered record, from its delivery report:
    # what the chaos read-back (`watchtower.chaos.readback`) looks each record up by. Off by default
    # (a per-record callback and ~100 bytes per record).
    track_offsets: bool = False
    records: list[tuple[int, int, str, str | None, str | None]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*KINDS, MARKER), 0))
    malformed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MALFORMED_KINDS, 0))
    ids: dict[str, list[str]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    delivered: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # delivery error name -> count
    partitions: dict[int, int] = field(default_factory=dict)  # delivered records per partition
    started_at: float | None = None
    sending_done_at: float | None = None  # before the final flush and markers
    finished_at: float | None = None

    def add(self, rec: Record) -> None:
        self.counts[rec.kind] = self.counts.get(rec.kind, 0) + 1
        if rec.sub_kind is not None:
            self.malformed[rec.sub_kind] += 1
        if self.track_ids and rec.event_id is not None and rec.kind in self.ids:
            self.ids[rec.kind].append(rec.event_id)

    def delivery(self, error: str | None, partition: int | None = None) -> None:
        if error is None:
            self.delivered += 1
            if partition is not None:
                self.partitions[partition] = self.partitions.get(partition, 0) + 1
        else:
            self.failed += 1
            self.errors[error] = self.errors.get(error, 0) + 1

    @property
    def sent(self) -> int:
        return sum(self.counts.values())

    @property
    def unique_valid(self) -> int:
        """Events a correct pipeline counts once: on-time and late ones (duplicates and malformed excluded)."""
        return self.counts[VALID] + self.counts[LATE]

    @property
    def pending(self) -> int:
        return self.sent - self.delivered - self.failed

    @property
    def elapsed(self) -> float:
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return self.finished_at - self.started_at

    @property
    def send_rate(self) -> float:
        """Events per second while sending (flush and markers left out)."""
        if self.started_at is None or self.sending_done_at is None or self.sending_done_at <= self.started_at:
            return 0.0
        return (self.sent - self.counts[MARKER]) / (self.sending_done_at - self.started_at)

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "sent": self.sent,
            "counts": self.counts,
            "malformed": self.malformed,
            "delivered": self.delivered,
            "failed": self.failed,
            "pending": self.pending,
            "errors": self.errors,
            "partitions": {str(p): n for p, n in sorted(self.partitions.items())},
            "elapsed_s": round(self.elapsed, 3),
            "send_rate": round(self.send_rate, 1),
        }
        if self.track_ids:
            doc["ids"] = self.ids
        return doc

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(self.as_dict(), option=orjson.OPT_INDENT_2))
