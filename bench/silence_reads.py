"""Cost of the evaluation's silence read, before and after the cached read (A/B in one run, real Redis).

    .venv/bin/python bench/silence_reads.py                       # 10 active, 0 / 1,000 / 10,000 ended
    .venv/bin/python bench/silence_reads.py --ended 0 5000 --active 50 --repeat 500

Each evaluation calls `AlertStore.silences(now)`. Before: HVALS of the whole `silences` hash and a
decode of every silence, ended ones included (they were never deleted). After
(`watchtower/alerting/silence_store.py`): one GET of `silences:version` while nothing changed, and when
something did, a ZRANGEBYSCORE for the silences not yet ended and one HMGET of those. Reported: the median
and p95 per evaluation with nothing changed, and the cost of the evaluation right after a change.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import orjson
import redis

from watchtower.alerting.silences import Silence, parse_matchers
from watchtower.alerting.store import AlertStore
from watchtower.stack.redis_server import LocalRedis

T0 = 1_700_000_000.0
NOW = T0 + 1


def before(client: redis.Redis, prefix: str, now: float) -> list[Silence]:
    """The read as it was: every silence, filtered in Python."""
    every = [Silence.from_dict(orjson.loads(raw)) for raw in client.hvals(prefix + "silences")]
    return sorted((s for s in every if s.ends_at > now), key=lambda s: (s.starts_at, s.id))


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def ms(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"{statistics.median(xs) * 1000:.3f} / {xs[int(len(xs) * 0.95) - 1] * 1000:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ended", type=int, nargs="+", default=[0, 1000, 10000])
    ap.add_argument("--active", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = LocalRedis(workdir=Path(tmp), die_with_parent=True).start()
        client = redis.Redis.from_url(server.url)
        try:
            print(
                f"load average {os.getloadavg()[0]:.2f}; {args.active} active silences; ms median / p95 per evaluation"
            )
            print(
                "| ended silences | before: HVALS all | after: unchanged (GET) | after: right after a change |"
            )
            print("|---:|---:|---:|---:|")
            for ended in args.ended:
                prefix = f"bench{ended}:"
                store = AlertStore(client, prefix)
                for i in range(ended):  # ended within the retention: kept, listed by --all
                    store.add_silence(
                        Silence(parse_matchers(f"rule=old{i}"), starts_at=T0 - 7200, ends_at=T0 - 3600)
                    )
                for i in range(args.active):
                    store.add_silence(
                        Silence(parse_matchers(f"rule=live{i}"), starts_at=T0, ends_at=T0 + 86400)
                    )
                assert len(before(client, prefix, NOW)) == len(store.silences(NOW)) == args.active
                old = timed(lambda p=prefix: before(client, p, NOW), args.repeat)
                unchanged = timed(lambda s=store: s.silences(NOW), args.repeat)

                def changed(s=store, p=prefix) -> None:
                    client.incr(p + "silences:version")  # what an add or expire elsewhere does
                    s.silences(NOW)

                after_change = timed(changed, max(10, args.repeat // 10))
                print(f"| {ended:,} | {ms(old)} | {ms(unchanged)} | {ms(after_change)} |")
        finally:
            client.close()
            server.stop()


if __name__ == "__main__":
    main()
