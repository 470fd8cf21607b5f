"""A history of Readings as columns, and the numpy helpers every rule kind computes with. Pure, no clock.

A history is any sequence of `Reading`s (one collector's or several merged), in any order; only readings at
or before `now` count. Per metric it is read as a **frame**: the metric's series set (labels -> column,
shared by every collector that emits the metric), the distinct reading times (rows, oldest first) and a
(rows x series) float matrix with NaN where a series has no sample. Two readings at the same instant share a
row; the later one's value wins. A NaN sample reads as no sample.

`window(history, selector, now, since)` cuts a frame down to the selector's columns and the rows in
`[since, now]`, keeping the series with at least one sample there; `latest` is the newest row (the newest
reading that carried the metric at all) and a series present in it is *current* (the others disappeared).

The daemon hands rules an `IndexedHistory` from a `HistoryIndex`, which encodes each reading once (when it
first sees it), keeps the series sets across evaluations and caches, per series set, which columns each
selector matches and the `by` group of every column: a regex runs when a new series appears, not on every
evaluation. A plain list of readings works too (it is indexed on the spot, as tests do).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from watchtower.core.types import Labels, Reading
from watchtower.rules.selector import Selector

History = Sequence[Reading]


class Aggregate(str, Enum):
    MAX = "max"
    MIN = "min"
    SUM = "sum"
    AVG = "avg"
    NONE = "none"  # keep every series as it is


# ------------------------------------------------------------------------------------------ series sets


class SeriesSet:
    """The series of one metric: labels -> column, append-only (until `HistoryIndex` compacts it).

    Caches, per length of the set, each selector's matched columns and each `by`'s group of every column;
    they grow with the set, so label matching runs once per new series, not once per evaluation.
    """

    def __init__(self, labels: Iterable[Labels] = ()) -> None:
        self.labels: list[Labels] = []
        self._index: dict[Labels, int] = {}
        self._values: dict[
            str, tuple[list[int], dict[str, int]]
        ] = {}  # label -> (value code per column, codes)
        self._matched: dict[Selector, tuple[int, np.ndarray]] = {}
        self._groups: dict[tuple[str, ...], tuple[list[int], dict[Labels, int], list[Labels]]] = {}
        self._arrays: dict[object, np.ndarray] = {}  # the code lists above as arrays, rebuilt when they grow
        self._ranks: tuple[int, np.ndarray] = (0, np.empty(0, dtype=np.intp))
        for lbl in labels:
            self.column(lbl)

    def __len__(self) -> int:
        return len(self.labels)

    def column(self, labels: Labels) -> int:
        col = self._index.get(labels)
        if col is None:
            col = self._index[labels] = len(self.labels)
            self.labels.append(labels)
        return col

    def _value_codes(self, name: str) -> tuple[np.ndarray, list[str]]:
        codes, vocab = self._values.setdefault(name, ([], {}))
        for lbl in self.labels[len(codes) :]:
            value = next((v for k, v in lbl if k == name), "")  # a missing label reads as ""
            codes.append(vocab.setdefault(value, len(vocab)))
        return self._array(("value", name), codes), list(vocab)

    def _array(self, key: object, codes: list[int]) -> np.ndarray:
        arr = self._arrays.get(key)
        if arr is None or len(arr) != len(codes):
            arr = self._arrays[key] = np.asarray(codes, dtype=np.intp)
        return arr

    def label_order(self) -> np.ndarray:
        """Rank of every column when the series are sorted by labels (for results in label order)."""
        n = len(self.labels)
        if self._ranks[0] != n:
            ranks = np.empty(n, dtype=np.intp)
            ranks[sorted(range(n), key=self.labels.__getitem__)] = np.arange(n)
            self._ranks = (n, ranks)
        return self._ranks[1]

    def matched(self, selector: Selector) -> np.ndarray:
        """Columns (ascending) whose labels the selector's matchers accept."""
        n = len(self.labels)
        cached = self._matched.get(selector)
        if cached is not None and cached[0] == n:
            return cached[1]
        mask = np.ones(n, dtype=bool)
        for m in selector.matchers:
            codes, values = self._value_codes(m.label)
            ok = np.fromiter((m.matches({m.label: v}) for v in values), dtype=bool, count=len(values))
            mask &= ok[codes]
        cols = np.flatnonzero(mask)
        self._matched[selector] = (n, cols)
        return cols

    def groups(self, by: Sequence[str]) -> tuple[np.ndarray, list[Labels]]:
        """Group code of every column (the labels kept by `by`, in label order) and the group keys by code."""
        codes, index, keys = self._groups.setdefault(tuple(by), ([], {}, []))
        keep = set(by)
        for lbl in self.labels[len(codes) :]:
            key = tuple((k, v) for k, v in lbl if k in keep)
            code = index.get(key)
            if code is None:
                code = index[key] = len(keys)
                keys.append(key)
            codes.append(code)
        return self._array(("by", tuple(by)), codes), keys


# ----------------------------------------------------------------------------------------------- frames


@dataclass(frozen=True, slots=True)
class Frame:
    """One metric over a history: row times (ascending, distinct) x the series set's columns, NaN = absent."""

    series: SeriesSet
    times: np.ndarray
    values: np.ndarray


Encoded = tuple[np.ndarray, np.ndarray]  # (columns, values) of one reading's samples of one metric


class IndexedHistory(Sequence[Reading]):
    """A history sorted by time, each reading encoded per metric; frames are built on first use and kept.

    Still a plain sequence of Readings. Build it with `HistoryIndex`, which keeps the encodings and the
    series sets across evaluations; one view serves one evaluation (all its rules).
    """

    def __init__(
        self,
        readings: Sequence[Reading],
        by_metric: dict[str, list[tuple[float, Encoded]]],
        sets: dict[str, SeriesSet],
    ):
        self._readings = readings
        self._by_metric = by_metric
        self._sets = sets
        self._frames: dict[str, Frame | None] = {}

    def __len__(self) -> int:
        return len(self._readings)

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        return self._readings[i]

    def frame(self, metric: str) -> Frame | None:
        """The metric's frame; None when no reading carries it."""
        if metric not in self._frames:
            self._frames[metric] = self._build(metric)
        return self._frames[metric]

    def _build(self, metric: str) -> Frame | None:
        parts = self._by_metric.get(metric)
        if not parts:
            return None
        ats = np.fromiter((at for at, _ in parts), dtype=float, count=len(parts))
        times = np.unique(ats)
        rows = np.searchsorted(times, ats)
        series = self._sets[metric]
        values = np.full((len(times), len(series)), np.nan)
        for row, (_, (cols, vals)) in zip(rows, parts, strict=True):
            values[row, cols] = vals  # time order: at an equal instant the later reading wins
        return Frame(series, times, values)


class HistoryIndex:
    """Builds IndexedHistory views; a reading is encoded once, the first time it is seen."""

    def __init__(self) -> None:
        self._splits: dict[int, tuple[Reading, dict[str, Encoded]]] = {}
        self._sets: dict[str, SeriesSet] = {}

    def view(self, readings: Iterable[Reading]) -> IndexedHistory:
        ordered = sorted(readings, key=lambda r: r.at)  # stable: equal times keep their order
        splits: dict[int, tuple[Reading, dict[str, Encoded]]] = {}
        for r in ordered:
            cached = self._splits.get(id(r))
            if cached is None or cached[0] is not r:
                cached = (r, self._encode(r))
            splits[id(r)] = cached  # holding `r` keeps its id from being reused while cached
        self._splits = splits  # readings that left the history are forgotten
        self._compact()
        by_metric: dict[str, list[tuple[float, Encoded]]] = {}
        for r in ordered:
            for metric, enc in self._splits[id(r)][1].items():
                by_metric.setdefault(metric, []).append((r.at, enc))
        return IndexedHistory(tuple(ordered), by_metric, dict(self._sets))

    def _encode(self, r: Reading) -> dict[str, Encoded]:
        by_metric: dict[str, list] = {}
        for s in r.samples:
            part = by_metric.get(s.metric)
            if part is None:
                part = by_metric[s.metric] = []
            part.append(s)
        out: dict[str, Encoded] = {}
        for metric, samples in by_metric.items():
            series = self._sets.get(metric)
            if series is None:
                series = self._sets[metric] = SeriesSet()
            known = series._index.get
            cols = [known(s.labels) for s in samples]
            if None in cols:
                cols = [series.column(s.labels) for s in samples]
            values = np.fromiter((s.value for s in samples), dtype=float, count=len(samples))
            out[metric] = (np.asarray(cols, dtype=np.intp), values)
        return out

    def _compact(self) -> None:
        """Start a series set afresh when most of its series left the history (partitions churn)."""
        for metric, series in list(self._sets.items()):
            encs = [e[metric] for _, e in self._splits.values() if metric in e]
            if len(series) <= 1024 or len(series) <= 2 * max((len(c) for c, _ in encs), default=0):
                continue
            live = np.unique(np.concatenate([c for c, _ in encs])) if encs else np.empty(0, dtype=np.intp)
            if len(series) <= 2 * len(live):
                continue
            fresh = SeriesSet(series.labels[i] for i in live)
            remap = np.full(len(series), -1, dtype=np.intp)
            remap[live] = np.arange(len(live))
            for _, e in self._splits.values():
                if metric in e:
                    c, v = e[metric]
                    e[metric] = (remap[c], v)
            self._sets[metric] = fresh


def indexed(history: History) -> IndexedHistory:
    """The history as an IndexedHistory: itself, or a plain sequence indexed on the spot."""
    return history if isinstance(history, IndexedHistory) else HistoryIndex().view(history)


# ---------------------------------------------------------------------------------------------- windows


@dataclass(frozen=True, slots=True)
class Window:
    """A selector's series over `[since, now]`: only series with a sample there, columns in set order."""

    series: SeriesSet | None
    cols: np.ndarray  # column of each series in `series`
    times: np.ndarray  # (rows,)
    values: np.ndarray  # (rows, series); NaN where absent
    present: np.ndarray  # (rows, series) bool
    latest: float | None  # newest reading time that carried the metric; None: none in the window

    @property
    def empty(self) -> bool:
        return self.latest is None or self.cols.size == 0

    def current(self) -> np.ndarray:
        """Mask of the series present in the newest reading of the metric; the others have disappeared."""
        return self.present[-1] if len(self.times) else np.zeros(0, dtype=bool)

    def labels(self, i: int) -> Labels:
        return self.series.labels[self.cols[i]]  # type: ignore[union-attr]

    def take(self, mask: np.ndarray) -> Window:
        return Window(
            self.series, self.cols[mask], self.times, self.values[:, mask], self.present[:, mask], self.latest
        )

    def since(self, start: float) -> Window:
        """The rows at or after `start`, keeping every series (some may have no sample left)."""
        r0 = int(np.searchsorted(self.times, start, side="left"))
        return Window(
            self.series, self.cols, self.times[r0:], self.values[r0:], self.present[r0:], self.latest
        )

    def groups(self, how: Aggregate, by: Sequence[str]) -> tuple[np.ndarray, list[Labels]]:
        """Group of every series (0..G-1) and the group keys; with `none` every series is its own group."""
        if how is Aggregate.NONE:
            return np.arange(self.cols.size), [self.labels(i) for i in range(self.cols.size)]
        codes, keys = self.series.groups(by)  # type: ignore[union-attr]
        used, local = np.unique(codes[self.cols], return_inverse=True)
        return local.reshape(-1), [keys[c] for c in used]


_EMPTY = Window(
    None, np.empty(0, dtype=np.intp), np.empty(0), np.empty((0, 0)), np.empty((0, 0), dtype=bool), None
)


def window(history: History, selector: Selector, now: float, since: float | None = None) -> Window:
    frame = indexed(history).frame(selector.metric)
    if frame is None:
        return _EMPTY
    r1 = int(np.searchsorted(frame.times, now, side="right"))
    r0 = 0 if since is None else int(np.searchsorted(frame.times, since, side="left"))
    if r1 <= r0:
        return _EMPTY
    cols = frame.series.matched(selector)
    values = frame.values[r0:r1, cols]
    present = ~np.isnan(values)
    seen = present.any(axis=0)
    if not seen.all():
        cols, values, present = cols[seen], values[:, seen], present[:, seen]
    return Window(frame.series, cols, frame.times[r0:r1], values, present, float(frame.times[r1 - 1]))


# ------------------------------------------------------------------------------------------------- math


def combine(
    values: np.ndarray, present: np.ndarray, groups: np.ndarray, n_groups: int, how: Aggregate
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the present values of each group's series combined with `how` (max/min/sum/avg).

    Returns (rows x groups values, rows x groups "any series present"); a value without a present series is
    meaningless. `none` is not a combination: give every series its own group and use max.
    """
    if groups.size == 0:
        return np.empty((values.shape[0], 0)), np.empty((values.shape[0], 0), dtype=bool)
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    v, p = values[:, order], present[:, order]
    count = np.add.reduceat(p.astype(np.intp), starts, axis=1)
    if how is Aggregate.MIN:
        out = np.minimum.reduceat(np.where(p, v, np.inf), starts, axis=1)
    elif how in (Aggregate.SUM, Aggregate.AVG):
        out = np.add.reduceat(np.where(p, v, 0.0), starts, axis=1)
        if how is Aggregate.AVG:
            out = out / np.maximum(count, 1)
    else:
        out = np.maximum.reduceat(np.where(p, v, -np.inf), starts, axis=1)
    assert out.shape[1] == n_groups
    return out, count > 0


def split_by(groups: np.ndarray) -> list[np.ndarray]:
    """Indices of each group, for group codes 0..G-1 that all occur; ascending within a group."""
    if groups.size == 0:
        return []
    order = np.argsort(groups, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(groups[order])) + 1)


def previous(present: np.ndarray) -> np.ndarray:
    """Per row and series, the row of the series' previous sample (-1 when none): consecutive points."""
    rows = np.arange(present.shape[0])[:, None]
    last = np.maximum.accumulate(np.where(present, rows, -1), axis=0)
    prev = np.empty_like(last)
    prev[:1] = -1
    prev[1:] = last[:-1]
    return prev


def pairs(values: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row of previous sample, previous value, mask of samples that have a previous one)."""
    prev = previous(present)
    prev_values = np.take_along_axis(values, np.maximum(prev, 0), axis=0)
    return prev, prev_values, present & (prev >= 0)


def increase(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Per series, how much a counter grew over its samples, a drop being a reset to zero (Prometheus)."""
    _, prev_values, has_prev = pairs(values, present)
    steps = np.where(values >= prev_values, values - prev_values, values)
    return np.where(has_prev, steps, 0.0).sum(axis=0)  # over time: added in time order


def first_row(present: np.ndarray) -> np.ndarray:
    return np.argmax(present, axis=0)


def last_row(mask: np.ndarray) -> np.ndarray:
    """Per column, the last row where the mask holds (garbage where it never does)."""
    return mask.shape[0] - 1 - np.argmax(mask[::-1], axis=0)


def rates(w: Window, unit: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per series of the window: average counter increase per `unit` seconds (resets handled).

    Returns (rates, has_rate): a series needs samples at two distinct times. Multiplies before dividing, so
    a whole-number rate stays exact (1500 in 180 s is exactly 500/min).
    """
    if w.cols.size == 0:
        return np.empty(0), np.zeros(0, dtype=bool)
    t_first = w.times[first_row(w.present)]
    t_last = w.times[last_row(w.present)]
    span = t_last - t_first
    ok = span > 0
    return np.where(ok, increase(w.values, w.present) * unit / np.where(ok, span, 1.0), 0.0), ok


def least_squares(
    times: np.ndarray, values: np.ndarray, present: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per column: slope of the best straight line through the present points, and its value at the last row.

    Times are taken relative to the last row, so epoch-sized timestamps cost no precision. Every column needs
    two present points at distinct times, and a point at the last row.
    """
    n = present.sum(axis=0)
    xs = np.where(present, (times - times[-1])[:, None], 0.0)
    ys = np.where(present, values, 0.0)
    mx, my = xs.sum(axis=0) / n, ys.sum(axis=0) / n
    dx = np.where(present, xs - mx, 0.0)
    slope = (dx * np.where(present, ys - my, 0.0)).sum(axis=0) / (dx * dx).sum(axis=0)
    return slope, my - slope * mx


@dataclass(frozen=True, slots=True)
class Grouped:
    """A window's current series combined per group at every row (see `grouped`)."""

    keys: list[Labels]  # current groups, sorted
    values: np.ndarray  # (rows, groups): the combined value; meaningful where `present`
    present: np.ndarray  # (rows, groups): some series of the group has a sample at the row
    members: list[np.ndarray]  # per group: its current series (indices into the window)
    gone: list[Labels]  # groups seen in the window without a current series (moved away), sorted


def grouped(w: Window, how: Aggregate, by: Sequence[str]) -> Grouped:
    """Current series combined per `by` group (or kept one by one with `none`), groups in key order."""
    codes, keys = w.groups(how, by)
    cur = np.flatnonzero(w.current())
    used, local = np.unique(codes[cur], return_inverse=True)
    local = local.reshape(-1)
    values, present = combine(
        w.values[:, cur], w.present[:, cur], local, len(used), Aggregate.MAX if how is Aggregate.NONE else how
    )
    cur_keys = [keys[c] for c in used]
    order = sorted(range(len(used)), key=cur_keys.__getitem__)
    members = [cur[m] for m in split_by(local)]
    return Grouped(
        [cur_keys[g] for g in order],
        values[:, order],
        present[:, order],
        [members[g] for g in order],
        sorted(set(keys) - set(cur_keys)),
    )
