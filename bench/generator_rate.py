"""How fast can the generator produce to the embedded broker on this machine?

    .venv/bin/python bench/generator_rate.py [--duration 10] [--bootstrap HOST:PORT]

Starts a throwaway tansu (unless --bootstrap is given), creates a 6-partition topic and runs the
generator unthrottled with the reference producer settings: once clean, once with 1% of each fault.
Prints events/s while sending and end to end (until every record is acknowledged), and the factory
alone (no Kafka) for comparison. On a shared machine the wall-clock rates depend on what else runs;
the per-CPU-second figures say what one free core would give.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid

from pipelines.generator import EventFactory
from pipelines.produce import Generator
from watchtower.config.models import GeneratorConfig, KafkaConfig
from watchtower.kafka import admin, ensure_topics
from watchtower.stack.broker import EmbeddedBroker

UNTHROTTLED = 1e9


def factory_rate(seconds: float, **faults: float) -> tuple[float, float]:
    """Events/s of wall time and per CPU-second of this process (the machine may be shared)."""
    f = EventFactory(random.Random(1), **faults)
    n, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        n += len(f.batch(5000, int(time.time() * 1000)))
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu)


def kafka_rate(bootstrap: str, seconds: float, **faults: float) -> tuple[float, float, float, int]:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    ensure_topics(admin(KafkaConfig(), bootstrap), {topic: 6})
    cpu = time.process_time()  # counts librdkafka's threads too
    m = Generator(GeneratorConfig(rate=UNTHROTTLED, **faults), bootstrap, topic=topic).run(duration=seconds)
    cpu = time.process_time() - cpu
    assert m.failed == 0 and m.pending == 0, m.as_dict()
    return m.send_rate, m.delivered / m.elapsed, m.delivered / cpu, m.delivered


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--bootstrap", default=None)
    args = ap.parse_args()
    faults = {"duplicate_ratio": 0.01, "malformed_ratio": 0.01, "late_ratio": 0.01}

    for label, mix in (("clean", {}), ("1% faults", faults)):
        wall, per_cpu = factory_rate(3, **mix)
        print(f"factory only, {label + ':':<11} {wall:>10,.0f} events/s ({per_cpu:,.0f} per CPU-second)")
    broker = None if args.bootstrap else EmbeddedBroker(die_with_parent=True).start()
    bootstrap = args.bootstrap or broker.bootstrap_servers
    try:
        for label, mix in (("clean", {}), ("1% faults", faults)):
            send, e2e, per_cpu, n = kafka_rate(bootstrap, args.duration, **mix)
            print(
                f"to kafka, {label + ':':<15} {send:>10,.0f} events/s sending, {e2e:>10,.0f} events/s acknowledged, "
                f"{per_cpu:,.0f} per CPU-second of the generator ({n:,} records)"
            )
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
