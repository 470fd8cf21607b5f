"""Cost of one evaluation of many rules over a large history (pure: synthetic Readings, no broker, no Redis).

    .venv/bin/python bench/rule_eval_cost.py                                # 1,000 rules, 10,000 partitions
    .venv/bin/python bench/rule_eval_cost.py --rules 100 --repeat 5
    .venv/bin/python bench/rule_eval_cost.py --ruleset alerts/default.yaml   # the 12 reference rules

History: `--readings` lag-collector readings 10 s apart, each with committed offset, lag in messages and
lag in seconds for every partition (3 samples per partition), spread over 100 groups (`partitions / 100`
partitions each, topic `orders`). Rules, cycling through the kinds the reference rules use:
threshold (max lag of one group), growth (sum of one group's lag), time_to_breach (max of one group) and
consumer_status (one group), each selecting one group, so every rule keeps a hundredth of its metric; or,
with `--ruleset`, the rules of that file (alerts/default.yaml selects every partition of topic `orders`).

Reported, as in the daemon (one HistoryIndex kept across evaluations, a view per evaluation): the first
evaluation (every reading encoded, every selector matched against every series) and the steady state, where
each evaluation sees one new reading and the oldest one leaves (`--repeat` of them).

    .venv/bin/python bench/rule_eval_cost.py --loop 60 --reading-every 1s   # the daemon's evaluation loop

`--loop SECONDS` runs the daemon's own evaluation loop (`AlertEvaluator`, a local redis-server for the
store, timer `--interval`) while a publisher appends the next synthetic reading to the history every
`--reading-every` and announces it, as the collector runner does: every reading affects every rule. It
reports how many readings were published, how many cycles ran (timer / reading-driven), the timer ticks
missed (overruns), the share of the time the evaluator was busy, and publish -> end of the cycle that
read it. Cycles that run rules are held to `--busy` of the evaluator's CPU, so a fast collector cannot
starve it. `--silent N` more rules read a collector that published once and fell silent: only the timer
runs them (ticks inside the busy pause owe them to the next cycle that runs rules); the loop reports how
often they ran and the longest gap between their runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from watchtower.core.types import Reading, Sample
from watchtower.rules.config import evaluate_all, load_rules
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
                lbl = (("group", group), ("partition", str(p)), ("topic", "orders"))
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


def run_loop(args, h: list[Reading], rs: list) -> None:
    """The daemon's evaluation loop under a stream of readings; see the module docstring."""
    from watchtower.alerting.store import AlertStore
    from watchtower.core.history import History
    from watchtower.core.signal import ReadingSignal
    from watchtower.core.units import parse_duration
    from watchtower.daemon.evaluation import AlertEvaluator
    from watchtower.rules.config import RuleSet
    from watchtower.stack.redis_server import LocalRedis

    every = parse_duration(args.reading_every)
    cycles: list[tuple[float, float, bool, bool]] = []  # (start, end, reading-driven, ran rules)
    silent_runs: list[float] = []  # when the silent collector's rules ran

    class Timed(AlertEvaluator):
        def run_once(self, fresh=None, *, timer=None, rules=True, stale=False):  # type: ignore[no-untyped-def]
            t0 = time.monotonic()
            last = self._last_run.get("silent0")
            ok = super().run_once(fresh, timer=timer, rules=rules, stale=stale)
            cycles.append((t0, time.monotonic(), not timer, rules))
            if self._last_run.get("silent0") != last:
                silent_runs.append(t0)
            return ok

    silent = [
        KINDS["threshold"].model_validate(
            {"name": f"silent{i}", "selector": f'watchtower_dlq_messages{{topic="t{i}"}}', "bound": 10}
        )
        for i in range(args.silent)
    ]

    work = Path(tempfile.mkdtemp(prefix="wt-eval-loop-"))
    redis_server = LocalRedis(workdir=work / "redis", die_with_parent=True).start()
    history, signal = History(args.readings), ReadingSignal()
    base = time.time() - args.readings * every
    for i, r in enumerate(h[: args.readings]):  # the history as the daemon would hold it
        history.append(Reading(r.collector, base + i * every, r.samples))
    quiet = tuple(Sample("watchtower_dlq_messages", (("topic", f"t{i}"),), 1.0) for i in range(args.silent))
    history.append(Reading("quiet", base, quiet))  # its one reading: it has been silent since
    store = AlertStore.from_url(redis_server.url, sinks=())
    ev = Timed(
        RuleSet(tuple(rs) + tuple(silent)),
        history,
        store,
        interval=args.interval,
        startup_grace=0,
        readings=signal,
        busy=args.busy,
    )
    published: list[float] = []
    stop = threading.Event()

    def publisher() -> None:
        i = args.readings
        while not stop.wait(every):
            r = h[i % len(h)]
            at = time.time()
            history.append(Reading(r.collector, at, r.samples))
            published.append(time.monotonic())
            signal.publish(r.collector, at)
            i += 1

    t = threading.Thread(target=publisher, daemon=True)
    began = time.monotonic()
    ev.start()
    t.start()
    try:
        time.sleep(args.loop)
    finally:
        stop.set()
        t.join()
        ev.stop()
        redis_server.stop()
    span = time.monotonic() - began
    busy = sum(c[1] - c[0] for c in cycles) / span
    durations = [c[1] - c[0] for c in cycles if c[3]]  # cycles that ran rules
    latency = []
    for p in published:
        ends = [c[1] for c in cycles if c[0] >= p and c[3]]
        if ends:
            latency.append(min(ends) - p)
    health = ev.health
    if args.silent:
        gaps = [b - a for a, b in zip(silent_runs, silent_runs[1:], strict=False)]
        print(
            f"silent collector's {args.silent} rules (only the timer runs them) ran {len(silent_runs)} times in "
            f"{span:.0f} s (timer {args.interval:g} s), longest gap {max(gaps, default=float('nan')):.2f} s"
        )
    print(
        f"\nloop {args.loop:g} s, timer {args.interval:g} s, a reading every {every:g} s, busy share {args.busy:g}: "
        f"{len(published)} readings, {len(cycles)} cycles ({sum(1 for c in cycles if c[2])} reading-driven, "
        f"{sum(1 for c in cycles if not c[2])} timer, of which {sum(1 for c in cycles if not c[3])} only stepped "
        f"the lifecycle: past the busy budget), timer overruns {health.overruns}, errors {health.errors}"
    )
    q = statistics.quantiles
    print(
        "| cycles | reading-driven | timer overruns | evaluator busy | cycle with rules p50 / max s | reading -> evaluated p50 / p95 / max s |"
    )
    print("|---:|---:|---:|---:|---|---|")
    print(
        f"| {len(cycles)} | {sum(1 for c in cycles if c[2])} | {health.overruns} | {busy:.0%} "
        f"| {statistics.median(durations):.3f} / {max(durations):.3f} "
        f"| {statistics.median(latency):.3f} / {q(latency, n=20, method='inclusive')[18]:.3f} / {max(latency):.3f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--ruleset", help="a rule file or directory instead of the synthetic rules")
    ap.add_argument("--partitions", type=int, default=10_000)
    ap.add_argument("--readings", type=int, default=30, help="history length (10 s apart)")
    ap.add_argument("--repeat", type=int, default=5, help="steady-state evaluations (one new reading each)")
    ap.add_argument(
        "--loop", type=float, default=0, help="run the daemon's evaluation loop this many seconds"
    )
    ap.add_argument("--reading-every", default="1s", help="with --loop: a new reading this often")
    ap.add_argument("--interval", type=float, default=1.0, help="with --loop: the evaluation timer, s")
    ap.add_argument("--busy", type=float, default=0.5, help="with --loop: rules' share of the CPU")
    ap.add_argument(
        "--silent", type=int, default=10, help="with --loop: rules on a collector that fell silent"
    )
    args = ap.parse_args()

    t = time.perf_counter()
    h = history(args.partitions, args.readings + args.repeat)
    rs = list(load_rules(args.ruleset).rules) if args.ruleset else rules(args.rules)
    built = time.perf_counter() - t
    samples = sum(len(r.samples) for r in h[: args.readings])
    print(
        f"{len(rs)} rules, {args.partitions} partitions, {args.readings} readings, {samples:,} samples "
        f"(built in {built:.1f} s)"
    )

    if args.loop:
        run_loop(args, h, rs)
        return

    index = HistoryIndex()
    walls, results = [], 0
    for k in range(args.repeat + 1):
        readings = h[k : k + args.readings]
        now = readings[-1].at + 1
        t = time.perf_counter()
        view = index.view(readings)  # as each daemon cycle does: encodings and selector matches are reused
        res, failed = evaluate_all(rs, view, now)
        walls.append(time.perf_counter() - t)
        results = len(res)
        assert not failed, failed
    steady = walls[1:]
    print("| rules | first evaluation s | steady state s (median) | min s | max s | results |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {len(rs)} | {walls[0]:.3f} | {statistics.median(steady):.3f} | {min(steady):.3f} | {max(steady):.3f} "
        f"| {results} |"
    )


if __name__ == "__main__":
    main()
