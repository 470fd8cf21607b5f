"""`watchtower silence add|list|expire`: silences live in Redis, so every daemon sees them at once."""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import orjson
import redis
import typer
from rich.table import Table

from watchtower.alerting.silences import Silence, parse_matchers
from watchtower.alerting.store import AlertStore
from watchtower.cli.common import console, ctx_of, fail
from watchtower.core.units import parse_duration
from watchtower.notify.slack_blocks import fmt_duration

silence_app = typer.Typer(
    help="Silence alerts for a while (kept in Redis, shared by every daemon).", no_args_is_help=True
)


@contextmanager
def _store(ctx: typer.Context) -> Iterator[AlertStore]:
    cfg = ctx_of(ctx).config
    url = cfg.redis.url.get_secret_value() if cfg.redis.url else os.environ.get("REDIS_URL", "")
    if not url:
        fail("no Redis to keep silences in: set redis.url in the config, or REDIS_URL")
    store = AlertStore.from_url(url)
    try:
        store.r.ping()
    except redis.RedisError as exc:  # its text names host and port, never the password; keep only the kind
        store.close()
        fail(
            f"cannot reach Redis ({type(exc).__name__}): is it running? `watchtower stack status` shows the stack's"
        )
    try:
        yield store
    finally:
        store.close()


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


@silence_app.command("add")
def add(
    ctx: typer.Context,
    matchers: Annotated[
        list[str], typer.Argument(help='Label matchers: rule=lag_high group=~"orders.*" topic!=test')
    ],
    duration: str = typer.Option("2h", "--duration", "-d", help="How long: 30m, 2h, 1d."),
    comment: str = typer.Option("", "--comment", "-m", help="Why (shown in `silence list`)."),
    author: str = typer.Option("", "--author", help="Who; defaults to the login name."),
) -> None:
    """Silence the alerts that match every matcher, from now for --duration. Prints the silence id."""
    try:
        parsed = parse_matchers(matchers)
        seconds = parse_duration(duration)
    except ValueError as exc:
        fail(str(exc))
    if seconds <= 0:
        fail("--duration must be above zero, for example 2h")
    now = time.time()
    silence = Silence(
        parsed, starts_at=now, ends_at=now + seconds, comment=comment, created_by=author or _login()
    )
    with _store(ctx) as store:
        store.add_silence(silence)
    console.print(f"silenced {' '.join(map(str, parsed))} until {_when(silence.ends_at)}", highlight=False)
    print(silence.id)


@silence_app.command("list")
def list_(
    ctx: typer.Context,
    all_: bool = typer.Option(False, "--all", "-a", help="Include expired silences."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Show active silences (with --all, expired ones too)."""
    now = time.time()
    with _store(ctx) as store:
        silences = store.silences(now, include_expired=all_)
    if as_json:
        print(orjson.dumps([s.to_dict() for s in silences]).decode())
        return
    if not silences:
        console.print("no silences" if all_ else "no active silences")
        return
    table = Table("id", "matchers", "ends", "left", "comment", "by")
    for s in silences:
        left = (
            fmt_duration(s.ends_at - now) if s.active(now) else ("expired" if s.ends_at <= now else "pending")
        )
        table.add_row(s.id, " ".join(map(str, s.matchers)), _when(s.ends_at), left, s.comment, s.created_by)
    console.print(table)


@silence_app.command("expire")
def expire(
    ctx: typer.Context, silence_id: Annotated[str, typer.Argument(help="The id `silence add` printed.")]
) -> None:
    """End a silence now."""
    with _store(ctx) as store:
        ended = store.expire_silence(silence_id)
    if ended is None:
        fail(f"no silence {silence_id!r}: `watchtower silence list --all` shows the ids")
    console.print(f"expired {silence_id}", highlight=False)


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return ""
