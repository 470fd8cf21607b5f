"""`watchtower dashboards ...`: build the Grafana dashboards from the catalog and rules, push them to Grafana."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr

from watchtower.cli.common import console, ctx_of, fail
from watchtower.rules.config import check_rules

dashboards_app = typer.Typer(
    help="Grafana dashboards as code (needs the `grafana` extra).", no_args_is_help=True
)

TOKEN_ENV = ("WATCHTOWER_GRAFANA_TOKEN", "GRAFANA_TOKEN")


def _sdk_missing(exc: ImportError) -> typer.Exit:
    console.print(f"[bold red]{exc.name} is not installed[/]: pip install 'watchtower[grafana]'")
    return typer.Exit(2)


def _ruleset(rules: Path):
    ruleset, problems = check_rules(rules)
    if problems:
        console.print(
            f"[bold red]{len(problems)} problem(s) in {rules}[/]; fix them first (watchtower rules check)"
        )
        for p in problems:
            console.print(f"  {p}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    return ruleset


@dashboards_app.command("build")
def build(
    out: Annotated[Path, typer.Option(help="Where the dashboard JSON goes.")] = Path("dashboards"),
    rules: Annotated[Path, typer.Option(help="Rule file or directory (bounds and rule panels).")] = Path(
        "alerts"
    ),
    prometheus_url: Annotated[
        str, typer.Option(help="URL the provisioned datasource points at.")
    ] = "http://prometheus:9090",
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Write nothing; exit 1 if a dashboard or provisioning file would change."
        ),
    ] = False,
) -> None:
    """Write dashboards/<uid>.json and dashboards/provisioning/ from the metric catalog and the rule files."""
    try:
        from watchtower.dashboards import provisioning, render
        from watchtower.dashboards.layout import dashboards
    except ImportError as exc:
        raise _sdk_missing(exc) from None
    boards = dashboards(_ruleset(rules))
    if check:
        stale = [
            b.uid
            for b in boards
            if not (out / f"{b.uid}.json").exists()
            or (out / f"{b.uid}.json").read_text() != render.to_json(b)
        ]
        stale += [
            str(Path("provisioning") / rel)
            for rel in provisioning.stale(out / "provisioning", prometheus_url=prometheus_url)
        ]
        if stale:
            console.print(
                f"[bold red]out of date:[/] {', '.join(stale)}; run watchtower dashboards build"
                " (with the same --prometheus-url)",
                highlight=False,
            )
            raise typer.Exit(1)
        typer.echo(f"dashboards up to date: {len(boards)} and provisioning/ in {out}")
        return
    paths = render.write_all(boards, out)
    provisioning.write(out / "provisioning", prometheus_url=prometheus_url)
    panels = sum(len(list(b.panels())) for b in boards)
    typer.echo(f"wrote {len(paths)} dashboards ({panels} panels) and provisioning/ to {out}")


def _token(token_file: Path | None, configured: SecretStr | None) -> SecretStr | None:
    """--token-file (a mounted secret), else WATCHTOWER_GRAFANA_TOKEN or GRAFANA_TOKEN, else the config's
    grafana.token (the file's, or WATCHTOWER__GRAFANA__TOKEN); never printed."""
    if token_file is not None:
        try:
            return SecretStr(token_file.read_text().strip())
        except OSError as exc:
            console.print(
                f"[bold red]--token-file {token_file}[/]: cannot read it ({exc.strerror}); check the path"
            )
            raise typer.Exit(2) from None
    for name in TOKEN_ENV:
        if os.environ.get(name):
            return SecretStr(os.environ[name])
    return configured


@dashboards_app.command("push")
def push(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(help="Grafana base URL, e.g. http://localhost:3000 (default: grafana.url)."),
    ] = None,
    source: Annotated[Path, typer.Option("--dir", help="Directory of built dashboards.")] = Path(
        "dashboards"
    ),
    folder: Annotated[
        str | None,
        typer.Option(help="Folder uid, created when missing (default: grafana.folder, `watchtower`)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would change; send nothing.")
    ] = False,
    token_file: Annotated[
        Path | None, typer.Option(help="File holding the API token (e.g. a mounted secret).")
    ] = None,
) -> None:
    """Create the folder and upsert each dashboard by UID; unchanged ones are not sent (no version bump).

    Flags win over the config's `grafana:` section. The API token comes from --token-file, else
    WATCHTOWER_GRAFANA_TOKEN or GRAFANA_TOKEN, else grafana.token; it is never printed.
    """
    grafana = ctx_of(ctx).config.grafana
    url = url or grafana.url
    if not url:
        fail("no Grafana URL: pass --url or set grafana.url (WATCHTOWER__GRAFANA__URL)", code=2)
    folder = folder or grafana.folder
    try:
        from watchtower.dashboards import push as p
    except ImportError as exc:
        raise _sdk_missing(exc) from None
    try:
        api = p.connect(url, _token(token_file, grafana.token))
        boards = p.load_dir(source)
        folder_state = p.ensure_folder(api, folder, folder, dry_run=dry_run)
        plan = p.plan_push(api, boards, folder)
        sent = [] if dry_run else p.apply(api, plan)
    except p.PushError as exc:
        console.print(f"[bold red]push failed[/]: {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from None
    typer.echo(f"folder {folder}: {folder_state}")
    for c in plan:
        verb = c.action if not dry_run or c.action == "unchanged" else f"would {c.action}"
        typer.echo(f"{verb:>14}  {c.uid}  ({c.reason})")
    if not dry_run:
        typer.echo(f"sent {len(sent)} of {len(plan)} dashboards")
