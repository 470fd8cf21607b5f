"""How close each lag-in-seconds estimator gets to the truth, on steady, bursty, idle and replayed topics.

    .venv/bin/python bench/lag_seconds_accuracy.py

A simulated partition: a producer appends records (known append times), a consumer commits at a known
rate, and the collector looks every `interval` seconds, exactly as the daemon does: it records the high
watermark in the offset table and estimates the age of the record at the committed offset with both
estimators from watchtower/collectors/kafka_lag/seconds.py. The truth is the time that record has really been
waiting in the partition (now - its append time). Only cycles with lag > 0 are scored, and the first
`warmup` seconds are skipped (the offset table knows nothing before the daemon started).

The timestamp estimator reads the record's own timestamp: the append time for live records, the original
create time for replayed ones.
"""

from __future__ import annotations

import bisect
import random
import statistics
from dataclasses import dataclass

from watchtower.collectors.kafka_lag.seconds import (
    lag_seconds_from_timestamp,
    lag_seconds_interpolated,
    record_observation,
)


@dataclass
class Scenario:
    name: str
    append_times: list[float]  # per offset, sorted
    record_ts: list[float]  # the timestamp each record carries
    consume_rate: float  # records/s the consumer commits while it has something to read
    stop_consumer_at: float | None = None  # the consumer stops (is stuck) from then on
    duration: float = 900.0
    warmup: float = 120.0
    collect_from: float = 0.0  # when the daemon starts watching


BASE = 1_700_000_000.0  # epoch seconds, so record timestamps look like real ones


def poisson(rate: float, start: float, end: float, rng: random.Random) -> list[float]:
    out, t = [], start
    while True:
        t += rng.expovariate(rate)
        if t >= end:
            return out
        out.append(BASE + t)


def bursty(
    duration: float = 900.0, every: float = 60.0, burst: int = 6000, burst_len: float = 1.0
) -> list[float]:
    out = []
    t = 5.0
    while t < duration:
        out += [BASE + t + burst_len * i / burst for i in range(burst)]
        t += every
    return out


def scenarios() -> list[Scenario]:
    rng = random.Random(7)
    steady = poisson(100.0, 0, 900, rng)
    b = bursty()
    idle = poisson(50.0, 0, 300, rng)  # 5 minutes of ~50/s, then silence
    busy_hour = poisson(20.0, 0, 3900, rng)
    replay = poisson(200.0, 0, 900, rng)
    day = 86_400.0
    return [
        Scenario("steady ~100/s (Poisson), consumer 95/s", steady, steady, consume_rate=95.0),
        Scenario("bursty: 6000 in 1 s every 60 s, consumer 150/s", b, b, consume_rate=150.0),
        Scenario(
            "idle after 5 min, consumer stopped at 4 min",
            idle,
            idle,
            consume_rate=60.0,
            stop_consumer_at=240.0,
        ),
        Scenario(
            "busy topic, consumer stuck for 1 h (table thinning)",
            busy_hour,
            busy_hour,
            consume_rate=40.0,
            stop_consumer_at=300.0,
            duration=3900.0,
        ),
        Scenario(
            "replayed: re-produced with day-old timestamps, consumer 190/s",
            replay,
            [t - day for t in replay],
            consume_rate=190.0,
        ),
        Scenario(
            "daemon started 10 min after the consumer stopped",
            idle,
            idle,
            consume_rate=60.0,
            stop_consumer_at=60.0,
            collect_from=600.0,
            warmup=600.0,
        ),
    ]


def committed_at(sc: Scenario, t: float, prev_committed: int, prev_t: float) -> int:
    written = bisect.bisect_right(sc.append_times, BASE + t)
    if sc.stop_consumer_at is not None and t >= sc.stop_consumer_at:
        return prev_committed
    return min(written, prev_committed + int(sc.consume_rate * (t - prev_t)))


def run(sc: Scenario, interval: float, table_size: int = 128) -> dict[str, dict[str, float]]:
    table: tuple = ()
    errors: dict[str, list[float]] = {"timestamp": [], "interpolation": []}
    committed, prev_t = 0, 0.0
    step = 0.5  # the consumer model advances in half-second steps between collections
    t = 0.0
    next_collect = interval
    while t <= sc.duration:
        committed = committed_at(sc, t, committed, prev_t)
        prev_t = t
        if t >= next_collect:
            next_collect += interval
        if t >= sc.collect_from and (t - sc.collect_from) % interval == 0:
            now = BASE + t
            hwm = bisect.bisect_right(sc.append_times, now)
            table = record_observation(table, hwm, now, table_size)
            lag = hwm - committed
            if lag > 0 and t >= sc.warmup:
                truth = now - sc.append_times[committed]
                ts_est = lag_seconds_from_timestamp(sc.record_ts[committed], now, lag)
                ip_est = lag_seconds_interpolated(table, committed, lag, now)
                errors["timestamp"].append(ts_est - truth)
                if ip_est is not None:
                    errors["interpolation"].append(ip_est - truth)
        t += step
    out = {}
    for method, errs in errors.items():
        if not errs:
            out[method] = {}
            continue
        absolute = sorted(abs(e) for e in errs)
        out[method] = {
            "cycles": len(errs),
            "mean_error": statistics.fmean(errs),
            "p50_abs": absolute[len(absolute) // 2],
            "p99_abs": absolute[min(len(absolute) - 1, int(len(absolute) * 0.99))],
            "max_abs": absolute[-1],
        }
    return out


def main() -> None:
    print(
        "| scenario | interval | estimator | scored cycles | mean error s | p50 abs s | p99 abs s | max abs s |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for sc in scenarios():
        for interval in (5.0, 30.0):
            for method, m in run(sc, interval).items():
                if not m:
                    print(f"| {sc.name} | {interval:.0f} s | {method} | 0 | - | - | - | - |")
                    continue
                print(
                    f"| {sc.name} | {interval:.0f} s | {method} | {m['cycles']} | {m['mean_error']:+.2f} | "
                    f"{m['p50_abs']:.2f} | {m['p99_abs']:.2f} | {m['max_abs']:.2f} |"
                )


if __name__ == "__main__":
    main()
