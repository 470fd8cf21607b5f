"""The rule kinds as they were before the columnar evaluation: one sample at a time, in plain Python.

Kept only as the oracle of tests/unit/rules/test_columnar_equivalence.py: `evaluate(rule, history, now)` must
give what `rule.evaluate(history, now)` gives. Slow (every rule scans every sample of its metric), simple,
obviously right; the package ships only the columnar implementation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from watchtower.alerting.model import Offender, RuleResult
from watchtower.core.types import Labels, Reading
from watchtower.rules.base import fmt_duration
from watchtower.rules.kinds.burn_rate import BurnRateRule
from watchtower.rules.kinds.consumer_status import RANK, ConsumerStatusRule, PartitionStatus, Status
from watchtower.rules.kinds.growth import GrowthRule
from watchtower.rules.kinds.rate import RateRule
from watchtower.rules.kinds.threshold import ThresholdRule
from watchtower.rules.kinds.throughput import Signal, ThroughputFloorRule
from watchtower.rules.kinds.time_to_breach import TimeToBreachRule
from watchtower.rules.selector import Selector
from watchtower.rules.series import Aggregate

Point = tuple[float, float]


# --------------------------------------------------------------------------------------- series


def select(history: Sequence[Reading], selector: Selector, now: float, since: float | None = None):
    series: dict[Labels, list[Point]] = defaultdict(list)
    latest: float | None = None
    for reading in sorted((r for r in history if r.at <= now), key=lambda r: r.at):
        if since is not None and reading.at < since:
            continue
        if any(s.metric == selector.metric for s in reading.samples):
            latest = reading.at
        for s in reading.samples:
            if s.metric == selector.metric and all(m.matches(dict(s.labels)) for m in selector.matchers):
                pts = series[s.labels]
                if pts and pts[-1][0] == reading.at:
                    pts[-1] = (reading.at, s.value)
                else:
                    pts.append((reading.at, s.value))
    series = dict(series)
    current = {k: v for k, v in series.items() if v and v[-1][0] == latest}
    return series, latest, current


def apply(how: Aggregate, values: Sequence[float]) -> float:
    if how is Aggregate.MAX:
        return max(values)
    if how is Aggregate.MIN:
        return min(values)
    if how is Aggregate.SUM:
        return sum(values)
    return sum(values) / len(values)


def top_offenders(members, worst_first_desc: bool, n: int = 3):
    if len(members) <= 1:
        return ()
    ranked = sorted(members, key=lambda m: (-m[1] if worst_first_desc else m[1], m[0]))
    return tuple(Offender(labels, value) for labels, value in ranked[:n])


def group_labels(labels: Labels, by: Sequence[str]) -> Labels:
    keep = set(by)
    return tuple((k, v) for k, v in labels if k in keep)


def aggregate(series, how: Aggregate, by):
    if how is Aggregate.NONE:
        return {k: [(at, v, ((k, v),)) for at, v in pts] for k, pts in series.items()}
    buckets: dict = defaultdict(lambda: defaultdict(list))
    for labels, pts in series.items():
        key = group_labels(labels, by)
        for at, v in pts:
            buckets[key][at].append((labels, v))
    return {
        key: [
            (at, apply(how, [v for _, v in members]), tuple(members))
            for at, members in sorted(by_time.items())
        ]
        for key, by_time in buckets.items()
    }


def in_window(points: Iterable[Point], start: float, end: float) -> list[Point]:
    return [(at, v) for at, v in points if start <= at <= end]


def increase(points: Sequence[Point]) -> float:
    total = 0.0
    for (_, prev), (_, cur) in zip(points, points[1:], strict=False):
        total += cur - prev if cur >= prev else cur
    return total


def least_squares(points: Sequence[Point]) -> tuple[float, float]:
    n = len(points)
    t_last = points[-1][0]
    xs = [at - t_last for at, _ in points]
    ys = [v for _, v in points]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return slope, my - slope * mx


def group_values(values, how: Aggregate, by):
    if how is Aggregate.NONE:
        return {k: (v, ((k, v),)) for k, v in values.items()}
    groups: dict = defaultdict(list)
    for labels, v in sorted(values.items()):
        groups[group_labels(labels, by)].append((labels, v))
    return {k: (apply(how, [v for _, v in members]), tuple(members)) for k, members in groups.items()}


def rate(points: Sequence[Point], unit: float = 1.0) -> float | None:
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None
    return increase(points) * unit / (points[-1][0] - points[0][0])


# ----------------------------------------------------------------------------------------- kinds


def threshold(self: ThresholdRule, history, now) -> list[RuleResult]:
    series, latest, cur = select(history, self.selector, now, since=now - self.stale_after)
    if latest is None or not series:
        return [self.no_data()]
    current = aggregate(cur, self.aggregate, self.by)
    out = []
    for key in sorted(current):
        _, value, members = current[key][-1]
        out.append(
            self.result(
                key,
                breaching=self.op.holds(value, self.bound),
                value=value,
                bound=self.bound,
                offenders=top_offenders(members, self.op.rising),
                op=self.op.value,
            )
        )
    for key in sorted(set(aggregate(series, self.aggregate, self.by)) - set(current)):
        out.append(self.no_data(key))
    return out


def growth(self: GrowthRule, history, now) -> list[RuleResult]:
    series, latest, cur = select(history, self.selector, now, since=now - self.window)
    if latest is None or not series:
        return [self.no_data()]
    current = aggregate(cur, self.aggregate, self.by)
    out = []
    for key in sorted(current):
        points = current[key]
        if len(points) < 2:
            out.append(self.no_data(key))
            continue
        latest_v, members = points[-1][1], points[-1][2]
        baseline = max(min(v for _, v, _ in points), self.floor)
        ratio = latest_v / baseline
        out.append(
            self.result(
                key,
                breaching=ratio >= self.factor and latest_v >= self.min_value,
                value=ratio,
                bound=self.factor,
                offenders=top_offenders(members, True),
                baseline=baseline,
                latest=latest_v,
                window=fmt_duration(self.window),
            )
        )
    for key in sorted(set(aggregate(series, self.aggregate, self.by)) - set(current)):
        out.append(self.no_data(key))
    return out


def time_to_breach(self: TimeToBreachRule, history, now) -> list[RuleResult]:
    series, latest, cur = select(history, self.selector, now, since=now - self.window)
    if latest is None or not series:
        return [self.no_data()]
    current = aggregate(cur, self.aggregate, self.by)
    out = []
    for key in sorted(current):
        points = [(at, v) for at, v, _ in current[key]]
        if len(points) < self.min_points or points[0][0] == points[-1][0]:
            out.append(self.no_data(key))
            continue
        latest_v = points[-1][1]
        slope, fitted = least_squares(points)
        since_last = now - points[-1][0]
        if self.op.holds(latest_v, self.threshold):
            eta = 0.0
        elif not (slope > 0 if self.op.rising else slope < 0):
            eta = None
        else:
            eta = round(max(0.0, (self.threshold - fitted) / slope - since_last), 6)
        out.append(
            self.result(
                key,
                breaching=eta is not None and eta <= self.horizon,
                value=eta,
                bound=self.horizon,
                offenders=top_offenders(current[key][-1][2], self.op.rising),
                threshold=self.threshold,
                latest=latest_v,
                horizon=fmt_duration(self.horizon),
                slope=slope,
            )
        )
    for key in sorted(set(aggregate(series, self.aggregate, self.by)) - set(current)):
        out.append(self.no_data(key))
    return out


def rate_rule(self: RateRule, history, now) -> list[RuleResult]:
    series, latest, cur = select(history, self.selector, now, since=now - self.window)
    if latest is None or not series:
        return [self.no_data()]
    rates = {}
    for labels, points in cur.items():
        r = rate(in_window(points, now - self.window, now), unit=60.0)
        if r is not None:
            rates[labels] = r
    grouped = group_values(rates, self.aggregate, self.by)
    out = []
    for key in sorted(grouped):
        value, members = grouped[key]
        out.append(
            self.result(
                key,
                breaching=self.op.holds(value, self.bound),
                value=value,
                bound=self.bound,
                offenders=top_offenders(members, self.op.rising),
                window=fmt_duration(self.window),
                op=self.op.value,
            )
        )
    seen = {group_labels(k, self.by) if self.aggregate is not Aggregate.NONE else k for k in series}
    out.extend(self.no_data(key) for key in sorted(seen - set(grouped)))
    return out


def throughput(self: ThroughputFloorRule, history, now) -> list[RuleResult]:
    def measure(signal: Signal):
        start = now - self.window
        _, _, current = select(history, signal.selector, now, since=start)
        if signal.counter:
            rates = {
                k: r for k, pts in current.items() if (r := rate(in_window(pts, start, now))) is not None
            }
            return {k: v for k, (v, _) in group_values(rates, signal.aggregate, self.by).items()}
        summed = aggregate(current, signal.aggregate, self.by)
        return {k: sum(v for _, v, _ in pts) / len(pts) for k, pts in summed.items() if pts}

    produced, consumed = measure(self.output), measure(self.input)
    if not produced:
        return [self.no_data()]
    out = []
    for key in sorted(produced):
        incoming = consumed.get(key, consumed.get(()))
        if incoming is None:
            out.append(self.no_data(key))
            continue
        value = produced[key]
        out.append(
            self.result(
                key,
                breaching=value < self.floor and incoming > self.input_min,
                value=value,
                bound=self.floor,
                input=incoming,
                window=fmt_duration(self.window),
            )
        )
    return out


def partition_status(offsets, lags, now, window, stop_after, min_points) -> Status:
    if not offsets or not lags or lags[-1][1] <= 0:
        return Status.OK
    moved = offsets[0][0]
    for (_, a), (at, b) in zip(offsets, offsets[1:], strict=False):
        if b != a:
            moved = at
    busy_since = lags[0][0]
    for (_, a), (at, b) in zip(lags, lags[1:], strict=False):
        if a <= 0 < b:
            busy_since = at
    stuck_since = max(moved, busy_since)
    if now - stuck_since > stop_after:
        return Status.STOP
    recent = [(at, v) for at, v in offsets if at >= now - window]
    if any(b < a for (_, a), (_, b) in zip(recent, recent[1:], strict=False)):
        return Status.REWIND
    if now - stuck_since >= window:
        return Status.STALL
    recent_lag = [v for at, v in lags if at >= now - window]
    if (
        len(recent_lag) >= min_points
        and all(v > 0 for v in recent_lag)
        and all(b >= a for a, b in zip(recent_lag, recent_lag[1:], strict=False))
        and recent_lag[-1] > recent_lag[0]
    ):
        return Status.WARN
    return Status.OK


def consumer_status(self: ConsumerStatusRule, history, now) -> list[RuleResult]:
    since = now - max(self.window, self.stop_after) * 2
    _, latest, offsets = select(history, self.committed, now, since=since)
    if latest is None or now - latest > self.stale_after:
        return [self.no_data()]
    lags = {
        group_labels(k, self.join_on): v for k, v in select(history, self.lag, now, since=since)[2].items()
    }
    groups: dict[Labels, list[PartitionStatus]] = {}
    for labels, pts in sorted(offsets.items()):
        lag_pts = lags.get(group_labels(labels, self.join_on))
        if not lag_pts:
            continue
        status = partition_status(pts, lag_pts, now, self.window, self.stop_after, self.min_points)
        groups.setdefault(group_labels(labels, self.by), []).append(
            PartitionStatus(labels, status, lag_pts[-1][1])
        )
    if not groups:
        return [self.no_data()]
    out = []
    for key, parts in sorted(groups.items()):
        alerting = [p for p in parts if p.status in self.severities]
        worst = max(alerting, key=lambda p: RANK[p.status]).status if alerting else Status.OK
        bad = sorted(alerting, key=lambda p: (-RANK[p.status], -p.lag, p.labels))
        described = ", ".join(f"{_short(p.labels)} {p.status.value}" for p in bad[:5]) or "all partitions OK"
        out.append(
            self.result(
                key,
                breaching=worst is not Status.OK,
                value=sum(p.lag for p in parts),
                bound=None,
                severity=self.severities.get(worst, self.severity),
                offenders=tuple(Offender(p.labels, p.lag) for p in bad[:5]),
                status=worst.value,
                partitions=described,
                window=fmt_duration(self.window),
            )
        )
    return out


def _short(labels: Labels) -> str:
    d = dict(labels)
    return (
        f"{d.get('topic', '?')}/{d.get('partition', '?')}"
        if "partition" in d
        else ",".join(f"{k}={v}" for k, v in labels)
    )


_SEVERITY_ORDER = {"page": 0, "ticket": 1, "info": 2}


def burn_rate(self: BurnRateRule, history, now) -> list[RuleResult]:
    since = now - max(w.long for w in self.windows)

    def increases(selector):
        series, _, _ = select(history, selector, now, since=since)
        out = {}
        for length in {x for w in self.windows for x in (w.long, w.short)}:
            sums: dict = defaultdict(float)
            for labels, pts in series.items():
                window = in_window(pts, now - length, now)
                if len(window) >= 2:
                    sums[group_labels(labels, self.by)] += increase(window)
            out[length] = dict(sums)
        return out

    def burn(total, counted, length, key):
        events = total[length].get(key)
        if events is None:
            return None
        if self.good is not None:
            good = counted[length].get(key)
            if good is None:
                return None
            bad = events - good
        else:
            bad = counted[length].get(key, 0.0)
        ratio = min(max(bad / events, 0.0), 1.0) if events > 0 else 0.0
        return round(ratio / (1 - self.objective), 9)

    total = increases(self.total)
    counted = increases(self.good or self.bad)
    keys = sorted({k for per_window in total.values() for k in per_window})
    if not keys:
        return [self.no_data()]
    pairs = sorted(self.windows, key=lambda w: (_SEVERITY_ORDER[w.severity.value], -w.factor))
    out = []
    for key in keys:
        measured = [(w, burn(total, counted, w.long, key), burn(total, counted, w.short, key)) for w in pairs]
        with_data = [(w, lo, sh) for w, lo, sh in measured if lo is not None and sh is not None]
        if not with_data:
            out.append(self.no_data(key))
            continue
        hit = next(((w, lo, sh) for w, lo, sh in with_data if lo > w.factor and sh > w.factor), None)
        w, lo, sh = hit or with_data[0]
        out.append(
            self.result(
                key,
                breaching=hit is not None,
                value=lo,
                bound=w.factor,
                severity=w.severity,
                long=fmt_duration(w.long),
                short=fmt_duration(w.short),
                burn_short=sh,
                objective=self.objective,
            )
        )
    return out


ORACLES = {
    "threshold": threshold,
    "growth": growth,
    "time_to_breach": time_to_breach,
    "rate": rate_rule,
    "throughput_floor": throughput,
    "consumer_status": consumer_status,
    "burn_rate": burn_rate,
}


def evaluate(rule, history: Sequence[Reading], now: float) -> list[RuleResult]:
    return ORACLES[rule.kind](rule, history, now)
