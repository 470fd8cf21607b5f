"""`watchtower stack up | down | status`: the local broker and Redis the pipeline runs against."""

from __future__ import annotations

import time

import typer
from rich.table import Table

from watchtower.cli.common import console, ctx_of, fail
from watchtower.kafka import KafkaClientError
from watchtower.stack import Stack, StackError, StackInfo

stack_app = typer.Typer(
    help="The local stack: an embedded Kafka-protocol broker (tansu) and Redis, or the ones the config names.",
    no_args_is_help=True,
)


@stack_app.command("up")
def up(ctx: typer.Context) -> None:
    """Start the broker and Redis (unless configured externally) and create the topics. Safe to repeat."""
    stack = Stack(ctx_of(ctx).config)
    try:
        info = stack.up()
    except (StackError, KafkaClientError) as exc:
        fail(str(exc))
    console.print(_info_table(info))
    if info.already_running:
        console.print("[green]stack already running[/]")
    else:
        console.print(
            f"[green]stack up[/]; state in {stack.state_dir / 'stack.json'}; stop it with `watchtower stack down`"
        )


@stack_app.command("down")
def down(ctx: typer.Context) -> None:
    """Stop what `stack up` started. An external Kafka or Redis is left alone."""
    try:
        lines = Stack(ctx_of(ctx).config).down()
    except StackError as exc:
        fail(str(exc))
    for line in lines:
        console.print(line, highlight=False)


@stack_app.command("status")
def status(ctx: typer.Context) -> None:
    """Show what runs where and check it: process alive, port answers, topics listed. Exit 1 if unhealthy."""
    st = Stack(ctx_of(ctx).config).status()
    if not st.running:
        console.print(f"stack not running (no {st.state_file}); start it with `watchtower stack up`")
        raise typer.Exit(1)
    table = Table(title=f"watchtower stack (up {_age(st.info.started_at)})")
    for col in ("part", "mode", "endpoint", "pid", "checks", "detail"):
        table.add_column(col, overflow="fold")
    for c in st.components:
        checks = " ".join(
            f"[{'green' if ok else 'red'}]{name}{'✓' if ok else '✗'}[/]" for name, ok in c.checks.items()
        )
        table.add_row(c.name, c.mode, c.endpoint, str(c.pid or "-"), checks, c.detail)
    console.print(table)
    if not st.healthy:
        console.print("[bold red]stack unhealthy[/]: `watchtower stack up` restarts what is down")
        raise typer.Exit(1)


def _info_table(info: StackInfo) -> Table:
    table = Table(show_header=True)
    for col in ("part", "mode", "endpoint", "pid"):
        table.add_column(col, overflow="fold")
    table.add_row("kafka", info.broker.mode, info.broker.bootstrap_servers, str(info.broker.pid or "-"))
    table.add_row("redis", info.redis.mode, info.redis.url, str(info.redis.pid or "-"))
    for name, partitions in info.topics.items():
        table.add_row("topic", "", f"{name} ({partitions} partitions)", "")
    return table


def _age(started_at: float) -> str:
    seconds = max(0, int(time.time() - started_at))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )
