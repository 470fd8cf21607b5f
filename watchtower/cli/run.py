"""`watchtower run`: the measuring daemon in the foreground until SIGTERM or SIGINT."""

from __future__ import annotations

import signal
import threading

import typer

from watchtower.cli.common import ctx_of, fail


def run(
    ctx: typer.Context,
    host: str = typer.Option(
        None, "--host", help="HTTP bind address (default: daemon.http.host, 127.0.0.1)."
    ),
    port: int = typer.Option(
        None, "--port", help="HTTP port (default: daemon.http.port; 0 picks a free one)."
    ),
    bootstrap_servers: str = typer.Option(
        None, "--bootstrap-servers", envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka to watch."
    ),
) -> None:
    """Run the collectors and serve /metrics, /healthz and /api/v1/status until stopped."""
    from watchtower.config.daemon import DaemonConfig
    from watchtower.daemon.daemon import Daemon, build_collectors

    cfg = ctx_of(ctx).config
    daemon_cfg: DaemonConfig = getattr(cfg, "daemon", None) or DaemonConfig()
    http = daemon_cfg.http.model_copy(
        update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    )
    daemon_cfg = daemon_cfg.model_copy(update={"http": http})
    if not (bootstrap_servers or cfg.kafka.bootstrap_servers):
        from watchtower.stack import StackError, resolve_endpoints

        try:  # no Kafka configured: watch the running embedded stack's
            bootstrap_servers = resolve_endpoints(cfg).bootstrap_servers
        except StackError as exc:
            fail(str(exc), 2)
    try:
        redis_url = cfg.redis.url.get_secret_value() if cfg.redis.url else None
        collectors = build_collectors(daemon_cfg, cfg.kafka, bootstrap_servers, redis_url, cfg.pipeline)
    except ValueError as exc:
        fail(str(exc), 2)
    if not collectors:
        fail("no collector is enabled: enable one under daemon.collectors", 2)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        daemon = Daemon(collectors, daemon_cfg)
    except OSError as exc:
        fail(f"cannot start: {exc}")
    try:
        daemon.serve(stop)
    except OSError as exc:  # the port is taken, typically
        fail(f"cannot serve on {daemon_cfg.http.host}:{daemon_cfg.http.port}: {exc}")
