"""Cost of one Kafka lag collection cycle (wall and CPU) by partition and group count, on the embedded broker.

    .venv/bin/python bench/lag_cycle.py                      # the full grid: 100/1k/10k partitions x 1/10/50 groups
    .venv/bin/python bench/lag_cycle.py --partitions 1000 --groups 10

Layout: topics of up to 100 partitions, one record in each partition, and every group commits offset 0 on
every partition (the worst case: groups x partitions committed offsets, all lagging by one record).
For each size it reports the first (cold) cycle, which hands the lagging offsets to the background
timestamp probe (unless `auto` switches to interpolation) and interpolates, and the median of the next
cycles (warm: offsets unchanged, timestamps read by the probe and cached). The cycles run back to back.
CPU is process CPU time, so it includes librdkafka's threads.
"""

from __future__ import annotations

import argparse
import statistics
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from watchtower.collectors.kafka_lag.collector import KafkaLagCollector
from watchtower.collectors.kafka_lag.config import KafkaLagConfig
from watchtower.stack.broker import EmbeddedBroker

TOPIC_SIZE = 100


def setup(
    bootstrap: str, partitions: int, groups: int, tag: str, layout: str = "shared"
) -> tuple[list[str], list[str], float]:
    started = time.monotonic()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [f"bench-{tag}-{i}" for i in range((partitions + TOPIC_SIZE - 1) // TOPIC_SIZE)]
    sizes = {t: min(TOPIC_SIZE, partitions - i * TOPIC_SIZE) for i, t in enumerate(topics)}
    for fut in admin.create_topics(
        [NewTopic(t, n, 1) for t, n in sizes.items()], operation_timeout=60
    ).values():
        fut.result(120)
    p = Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1, "linger.ms": 5})
    for t, n in sizes.items():
        for part in range(n):
            p.produce(t, b"x", partition=part)
        p.poll(0)
    assert p.flush(120) == 0
    names = [f"bench-{tag}-g{i}" for i in range(groups)]
    offsets = [TopicPartition(t, part, 0) for t, n in sizes.items() for part in range(n)]
    for i, g in enumerate(names):
        mine = offsets if layout == "shared" else offsets[i::groups]
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": g, "enable.auto.commit": False})
        c.commit(offsets=mine, asynchronous=False)
        c.close()
    return topics, names, time.monotonic() - started


def measure(bootstrap: str, tag: str, groups: int, method: str, cycles: int) -> dict:
    cfg = KafkaLagConfig(
        groups_allow=[f"bench-{tag}-g.*"], lag_seconds_method=method, timeout=30, interval=60
    )
    c = KafkaLagCollector(cfg, {"bootstrap.servers": bootstrap})
    runs = []
    try:
        for _ in range(cycles):
            w0, c0 = time.perf_counter(), time.process_time()
            r = c.collect(time.time())
            runs.append(
                (
                    time.perf_counter() - w0,
                    time.process_time() - c0,
                    len(r.samples),
                    dict(r.detail["lag_seconds_methods"]),
                )
            )
    finally:
        c.close()
    cold, warm = runs[0], runs[1:]
    return {
        "cold_wall": cold[0],
        "cold_cpu": cold[1],
        "warm_wall": statistics.median(w for w, *_ in warm),
        "warm_cpu": statistics.median(cp for _, cp, *_ in warm),
        "samples": cold[2],
        "methods": cold[3],
        "warm_methods": warm[-1][3],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--partitions", type=int, nargs="*", default=[100, 1000, 10000])
    ap.add_argument("--groups", type=int, nargs="*", default=[1, 10, 50])
    ap.add_argument("--method", default="auto", choices=["auto", "timestamp", "interpolation"])
    ap.add_argument("--cycles", type=int, default=4)
    ap.add_argument(
        "--layout",
        default="shared",
        choices=["shared", "spread"],
        help="shared: every group commits every partition; spread: each partition is committed by one group",
    )
    args = ap.parse_args()
    broker = EmbeddedBroker(die_with_parent=True).start()
    print(f"layout={args.layout} method={args.method}")
    print(
        "| partitions | groups | committed offsets | setup s | cold wall s | cold CPU s | warm wall s | warm CPU s | samples | lag-seconds method (cold) | (last warm) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    try:
        for n in args.partitions:
            for g in args.groups:
                tag = f"{n}x{g}"
                _, _, setup_s = setup(broker.bootstrap_servers, n, g, tag, args.layout)
                m = measure(broker.bootstrap_servers, tag, g, args.method, args.cycles)
                print(
                    f"| {n} | {g} | {n * g if args.layout == 'shared' else n} | {setup_s:.1f} | {m['cold_wall']:.3f} | {m['cold_cpu']:.3f} | "
                    f"{m['warm_wall']:.3f} | {m['warm_cpu']:.3f} | {m['samples']} | {m['methods']} | {m['warm_methods']} |",
                    flush=True,
                )
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
