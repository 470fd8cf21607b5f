"""Cost of one evaluation of many rules over a large history (pure: synthetic Readings, no broker, no Redis).

    .venv/bin/python bench/rule_eval_cost.py                                # 1,000 rules, 10,000 partitions
    .venv/bin/python bench/rule_eval_cost.py --rules 1000 --partitions 10000 --readings 30 --plain

History: `--readings` lag-collector readings 10 s apart, each with committed offset, lag in messages and
lag in seconds for every partition (3 samples per partition), spread over 100 groups (one topic of
`partitions / 100` partitions each). Rules, cycling through the kinds the reference rules use:
threshold (max lag of one group), growth (sum of one group's lag), time_to_breach (max of one group) and
consumer_status (one group), each selecting one group, so every rule reads one metric of the whole history
and keeps a hundredth of it. Reported: the wall time of `evaluate_all` over the daemon's IndexedHistory
(the index is built once per reading and reused, as in the daemon; its first build is shown apart), and,
with `--plain`, over a plain list of readings (what select did before the index).
"""

from __future__ import annotations

import argparse
import statistics
import time

from watchtower.collectors.base import Reading, Sample
from watchtower.rules.config import evaluate_all
from watchtower.rules.kinds import KINDS
from watchtower.rules.series import HistoryIndex

T0 = 1_700_000_000.0
GROUPS = 100


def history(partitions: int, readings: int, step: float = 10.0) -> list[Reading]:
    per_group = max(1, partitions // GROUPS)
    out = []
    for i in range(readings):
        samples = []
        for g in range(GROUPS):
            group = f"g{g:03d}"
            for p in range(per_group):
                lbl = (("group", group), ("partition", str(p)), ("topic", f"t{g:03d}"))
                lag = float((p * 7 + i * 13 + g) % 500)
                samples += [
                    Sample("watchtower_consumer_committed_offset", lbl, float(i * 100 + p)),
                    Sample("watchtower_consumer_lag_messages", lbl, lag),
                    Sample("watchtower_consumer_lag_seconds", lbl, lag / 10),
                ]
        out.append(Reading("kafka_lag", T0 + i * step, tuple(samples)))
    return out


def rules(n: int) -> list:
    made = []
    for i in range(n):
        group = f"g{i % GROUPS:03d}"
        sel = f'watchtower_consumer_lag_messages{{group="{group}"}}'
        kind = ("threshold", "growth", "time_to_breach", "consumer_status")[i % 4]
        spec: dict = {"name": f"r{i}", "kind": kind}
        if kind == "threshold":
            spec |= {"selector": sel, "aggregate": "max", "by": ["group", "topic"], "bound": 400}
        elif kind == "growth":
            spec |= {"selector": sel, "aggregate": "sum", "by": ["group"], "factor": 2, "window": "5m"}
        elif kind == "time_to_breach":
            spec |= {
                "selector": sel,
                "aggregate": "max",
                "by": ["group"],
                "threshold": 1000,
                "window": "5m",
                "horizon": "15m",
            }
        else:
            spec |= {
                "committed": f'watchtower_consumer_committed_offset{{group="{group}"}}',
                "lag": sel,
                "by": ["group"],
            }
        made.append(KINDS[kind].model_validate(spec))
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--partitions", type=int, default=10_000)
    ap.add_argument("--readings", type=int, default=30, help="history length (10 s apart)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--plain", action="store_true", help="also time a plain list (slow: minutes)")
    args = ap.parse_args()

    t = time.perf_counter()
    h = history(args.partitions, args.readings)
    rs = rules(args.rules)
    built = time.perf_counter() - t
    samples = sum(len(r.samples) for r in h)
    now = h[-1].at + 1
    print(
        f"{args.rules} rules, {args.partitions} partitions, {args.readings} readings, {samples:,} samples "
        f"(built in {built:.1f} s)"
    )

    index = HistoryIndex()
    t = time.perf_counter()
    view = index.view(h)
    first_index = time.perf_counter() - t
    walls, results = [], 0
    for _ in range(args.repeat):
        t = time.perf_counter()
        view = index.view(h)  # as each daemon cycle does: splits are reused
        res, failed = evaluate_all(rs, view, now)
        walls.append(time.perf_counter() - t)
        results = len(res)
        assert not failed, failed
    print("| history | wall per evaluation s (median) | min s | results |")
    print("|---|---:|---:|---:|")
    print(
        f"| IndexedHistory (index reused) | {statistics.median(walls):.3f} | {min(walls):.3f} | {results} |"
    )
    print(f"| first index build (once per reading, amortised in the daemon) | {first_index:.3f} | | |")
    if args.plain:
        t = time.perf_counter()
        res, _ = evaluate_all(rs, h, now)
        print(f"| plain list of readings | {time.perf_counter() - t:.3f} | | {len(res)} |")


if __name__ == "__main__":
    main()
