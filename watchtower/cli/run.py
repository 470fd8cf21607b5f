"""`watchtower run`: the measuring daemon in the foreground until SIGTERM or SIGINT."""

from __future__ import annotations

import signal
import threading

import typer

from watchtower.cli.common import console, ctx_of, fail


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
    """Run the collectors and the alert rules; serve /metrics, /healthz, /api/v1/status and /api/v1/alerts."""
    from watchtower.config import ConfigError
    from watchtower.core.history import History
    from watchtower.daemon.config import DaemonConfig
    from watchtower.daemon.daemon import Daemon, build_alerting, build_collectors

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
    redis_url = cfg.redis.url.get_secret_value() if cfg.redis.url else None
    if cfg.alerting.enabled and not redis_url:
        from watchtower.stack import StackError, resolve_endpoints

        try:  # alert state and the outbox live in Redis: the running embedded stack's, if any
            redis_url = resolve_endpoints(cfg).redis_url
        except StackError:
            fail(
                "alerting keeps its state in Redis: set redis.url (or REDIS_URL), run `watchtower stack up`, "
                "or set alerting.enabled: false",
                2,
            )
    try:
        collectors = build_collectors(
            daemon_cfg, cfg.kafka, bootstrap_servers, redis_url, cfg.pipeline, cfg.flink
        )
    except ValueError as exc:
        fail(str(exc), 2)
    if not collectors:
        fail("no collector is enabled: enable one under daemon.collectors", 2)
    history = History(daemon_cfg.history_size)
    lease = None
    if cfg.ha.enabled:
        if not redis_url:
            fail("ha.enabled keeps its lease in Redis: set redis.url (or REDIS_URL)", 2)
        from watchtower.daemon.leader import build_lease

        lease = build_lease(cfg.ha, redis_url)
    alerting = None
    if cfg.alerting.enabled:
        assert redis_url
        try:
            alerting = build_alerting(cfg.alerting, history, redis_url, gate=lease)
        except ConfigError as exc:
            console.print("[bold red]Invalid alert rules[/]")
            for problem in exc.problems:
                console.print(f"  {problem}", markup=False, highlight=False)
            raise typer.Exit(2) from None

    scaling = None
    if cfg.scaling.targets:
        from watchtower.scale.controller import build_controller

        try:
            scaling = build_controller(cfg, history, redis_url, gate=lease)
        except ValueError as exc:
            fail(str(exc), 2)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        daemon = Daemon(
            collectors, daemon_cfg, history=history, alerting=alerting, scaling=scaling, lease=lease
        )
    except OSError as exc:
        fail(f"cannot start: {exc}")
    if lease is not None:
        lease.start()
    try:
        daemon.serve(stop)
    except OSError as exc:  # the port is taken, typically
        fail(f"cannot serve on {daemon_cfg.http.host}:{daemon_cfg.http.port}: {exc}")
    finally:
        if lease is not None:
            lease.stop()
