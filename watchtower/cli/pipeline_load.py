"""`watchtower pipeline generate` and `watchtower pipeline workers`: load for the pipeline and its consumer group.

Registered on `pipeline_app` by `watchtower/cli/pipeline.py` through `register`.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.live import Live
from rich.text import Text

from watchtower.cli.common import console, ctx_of, fail
from watchtower.settings import WatchtowerConfig


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
    app.command("workers")(workers)


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGTERM / SIGINT set the event instead of raising; the previous handlers come back afterwards."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _bootstrap(cfg: WatchtowerConfig, bootstrap: str | None) -> str:
    if bootstrap or cfg.kafka.bootstrap_servers:
        return bootstrap or cfg.kafka.bootstrap_servers
    from watchtower.stack import StackError, resolve_endpoints

    try:
        return resolve_endpoints(cfg).bootstrap_servers
    except StackError as exc:
        fail(str(exc))
    raise AssertionError("unreachable")


def _redis_url(cfg: WatchtowerConfig, redis_url: str | None) -> str:
    if redis_url:
        return redis_url
    from watchtower.stack import StackError, resolve_endpoints

    try:
        return resolve_endpoints(cfg).redis_url
    except StackError as exc:
        fail(str(exc))
    raise AssertionError("unreachable")


def generate(
    ctx: typer.Context,
    rate: float = typer.Option(None, "--rate", help="Events per second (default: generator.rate)."),
    count: int = typer.Option(None, "--count", help="Stop after this many events."),
    duration: float = typer.Option(None, "--duration", help="Stop after this many seconds."),
    duplicates: float = typer.Option(
        None, "--duplicates", help="Share of records that resend an earlier event's bytes."
    ),
    malformed: float = typer.Option(
        None, "--malformed", help="Share of records that break the event contract."
    ),
    late: float = typer.Option(None, "--late", help="Share of events stamped generator.late_by in the past."),
    users: int = typer.Option(None, "--users", help="Distinct user ids (keys); popularity is zipf-skewed."),
    topic: str = typer.Option(None, "--topic", help="Topic (default: pipeline.topic)."),
    manifest_path: Path = typer.Option(
        None, "--manifest", help="Write the run's manifest (counts by kind, deliveries) here."
    ),
    seed: int = typer.Option(None, "--seed", help="Seed the fault mix and payloads (ids stay random)."),
    bootstrap: str = typer.Option(
        None, "--bootstrap", help="Kafka bootstrap servers (default: config, else the stack)."
    ),
) -> None:
    """Produce order events at a steady rate with a mix of faults; ends with one marker per partition.

    Runs until --count, --duration or Ctrl-C. Exits 1 if any delivery failed.
    """
    cfg = ctx_of(ctx).config
    overrides = {
        k: v
        for k, v in {
            "rate": rate,
            "users": users,
            "duplicate_ratio": duplicates,
            "malformed_ratio": malformed,
            "late_ratio": late,
        }.items()
        if v is not None
    }
    try:
        gen_cfg = cfg.generator.model_validate({**cfg.generator.model_dump(), **overrides})
    except ValidationError as exc:
        fail("; ".join(f"generator.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    servers = _bootstrap(cfg, bootstrap)
    topic = topic or cfg.pipeline.topic

    from pipelines.produce import Generator
    from watchtower.kafka import KafkaClientError, admin, ensure_topics

    try:  # no network yet: bad ratios fail before anything connects
        gen = Generator(
            gen_cfg,
            servers,
            kafka=cfg.kafka,
            topic=topic,
            max_event_bytes=cfg.pipeline.max_event_bytes,
            seed=seed,
        )
    except ValueError as exc:
        fail(str(exc))
    try:
        ensure_topics(admin(cfg.kafka, servers), {topic: cfg.pipeline.partitions})
    except KafkaClientError as exc:
        fail(str(exc))
    started = time.monotonic()
    with _stop_on_signals() as stop, Live(Text("starting..."), console=console, refresh_per_second=4) as live:

        def progress(m, current_rate: float) -> None:
            live.update(
                Text(
                    f"sent {m.sent:,}  rate {current_rate:,.0f}/s  delivered {m.delivered:,}  "
                    f"failed {m.failed:,}  elapsed {time.monotonic() - started:,.1f}s"
                )
            )

        gen.on_progress = progress
        try:
            m = gen.run(count=count, duration=duration, stop_event=stop)
        except KafkaClientError as exc:
            fail(str(exc))
    console.print(
        f"[green]done[/]: {m.sent:,} records in {m.elapsed:.1f}s ({m.send_rate:,.0f}/s while sending): "
        + ", ".join(f"{k} {n:,}" for k, n in m.counts.items())
        + f"; delivered {m.delivered:,}, failed {m.failed:,}",
        highlight=False,
    )
    if manifest_path is not None:
        m.write(manifest_path)
        console.print(f"manifest written to {manifest_path}")
    if m.failed or m.pending:
        console.print(f"[bold red]{m.failed:,} deliveries failed, {m.pending:,} unconfirmed[/]: {m.errors}")
        raise typer.Exit(1)


def workers(
    ctx: typer.Context,
    count: int = typer.Option(None, "--count", help="Worker processes (default: workers.count)."),
    topic: str = typer.Option(None, "--topic", help="Topic (default: pipeline.topic)."),
    log_path: Path = typer.Option(
        None, "--log", help="Send the workers' logs to this file instead of the terminal."
    ),
    bootstrap: str = typer.Option(
        None, "--bootstrap", help="Kafka bootstrap servers (default: config, else the stack)."
    ),
    redis_url: str = typer.Option(
        None, "--redis-url", envvar="REDIS_URL", help="Redis URL (default: config, else the stack)."
    ),
    follow: str = typer.Option(
        None,
        "--follow",
        help="Follow the worker count the daemon's scaling target of this name sets (docs/scaling.md).",
    ),
    max_rate: float = typer.Option(
        None, "--max-rate", min=1, help="Records per second each worker processes at most."
    ),
) -> None:
    """Run N enricher processes in one consumer group, restarting any that crash, until Ctrl-C / SIGTERM.

    With --follow TARGET the count follows `scaling.targets.TARGET` (actuator kind local_pool)."""
    cfg = ctx_of(ctx).config
    servers = _bootstrap(cfg, bootstrap)
    url = _redis_url(cfg, redis_url)
    from pipelines.workers.enricher import EnricherStore, WorkerSettings
    from pipelines.workers.pool import WorkerPool

    settings = WorkerSettings(
        bootstrap=servers,
        redis_url=url,
        topic=topic or cfg.pipeline.topic,
        group=cfg.workers.group,
        kafka=cfg.kafka,
        workers=cfg.workers,
        max_event_bytes=cfg.pipeline.max_event_bytes,
        max_rate=max_rate,
    )
    import redis

    client = redis.Redis.from_url(url)
    store = EnricherStore(client, settings.group, settings.topic)
    pool = WorkerPool(settings, log_path=log_path, log_level=cfg.log_level, log_format=cfg.log_format)
    follower = None
    with _stop_on_signals() as stop:
        pool.start(cfg.workers.count if count is None else count)
        if follow:
            from watchtower.scale.local_pool import PoolFollower

            follower = PoolFollower(follow, pool, client).start()
        try:
            with Live(Text("starting..."), console=console, refresh_per_second=2) as live:
                while not stop.wait(1.0):
                    live.update(Text(_status_line(pool, store)))
        finally:
            console.print("stopping workers (they commit and leave the group)...")
            if follower is not None:
                follower.stop()
            pool.stop()
            console.print(f"[green]workers stopped[/]; {_status_line(pool, store)}", highlight=False)
            client.close()


def _status_line(pool, store) -> str:
    try:
        stats = store.stats()
        owners = store.owners()
    except Exception as exc:  # noqa: BLE001 - a status line must not stop the pool
        return f"workers {pool.size}  restarts {pool.restarts}  (redis: {exc})"
    invalid = sum(v for k, v in stats.items() if k.startswith("invalid:"))
    return (
        f"workers {pool.size}  restarts {pool.restarts}  partitions owned {len(owners)}  "
        f"applied {stats.get('applied', 0):,}  duplicates {stats.get('duplicate', 0):,}  "
        f"invalid {invalid:,}  control {stats.get('control', 0):,}  replayed {stats.get('replayed', 0):,}"
    )
