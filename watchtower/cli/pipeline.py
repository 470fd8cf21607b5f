"""`watchtower pipeline ...`: run the reference pipeline's jobs against the stack or the configured cluster."""

from __future__ import annotations

import signal
import threading

import typer

from watchtower.cli.common import console, ctx_of, fail
from watchtower.cli.pipeline_load import register as register_load

pipeline_app = typer.Typer(
    help="Run the reference pipeline: the Spark job (and the generator and workers).", no_args_is_help=True
)
register_load(pipeline_app)  # generate, workers


def _endpoints(ctx: typer.Context, bootstrap: str | None, redis_url: str | None) -> tuple[str, str]:
    if bootstrap and redis_url:
        return bootstrap, redis_url
    from watchtower.stack import StackError, resolve_endpoints

    try:
        found = resolve_endpoints(ctx_of(ctx).config)
    except StackError as exc:
        fail(str(exc))
    return bootstrap or found.bootstrap_servers, redis_url or found.redis_url


@pipeline_app.command("spark")
def spark(
    ctx: typer.Context,
    bootstrap: str = typer.Option(
        None, "--bootstrap", help="Kafka bootstrap servers (default: config, else the stack)."
    ),
    redis_url: str = typer.Option(
        None, "--redis-url", envvar="REDIS_URL", help="Redis URL (default: config, else the stack)."
    ),
    starting_offsets: str = typer.Option(
        "earliest", "--starting-offsets", help="earliest or latest, for a new checkpoint."
    ),
    available_now: bool = typer.Option(
        False, "--available-now", help="Process what is in the topic now, then exit."
    ),
    until_idle: float = typer.Option(
        None, "--until-idle", help="Exit after this many seconds without new input."
    ),
) -> None:
    """Run the Spark Structured Streaming job until SIGTERM / Ctrl-C (or idle / available-now)."""
    from watchtower.core.extras import MissingExtra, require_extra

    try:
        require_extra("spark", "pyspark", "pyarrow", what="the Spark job")
    except MissingExtra as exc:
        fail(str(exc), 2)
    cfg = ctx_of(ctx).config
    servers, url = _endpoints(ctx, bootstrap, redis_url)
    from pipelines.spark.job import SparkJob, local_session

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    job = SparkJob(cfg.pipeline, cfg.kafka.librdkafka(servers), url, starting_offsets=starting_offsets)
    session = local_session(cfg.pipeline.shuffle_partitions)
    try:
        job.run(session, stop, available_now=available_now, idle_timeout=until_idle)
    except RuntimeError as exc:
        fail(str(exc))
    finally:
        session.stop()
    reports = job.writer.reports if job.writer else []
    console.print(
        f"[green]spark job stopped[/] after {len(reports)} batches, {sum(r.counts.get('input_rows', 0) for r in reports)} records"
    )
