"""`watchtower rules ...`: work with alert rule files."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from watchtower.cli.common import console
from watchtower.rules.config import check_rules
from watchtower.rules.packaged import packaged_rules

rules_app = typer.Typer(
    help="Validate alert rule files and export them for Prometheus.", no_args_is_help=True
)


@rules_app.command("check")
def rules_check(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="A rule file, or a directory of *.yaml rule files (default: the packaged default rules)."
        ),
    ] = None,
) -> None:
    """Report every problem in the rule files with file:line and the fix; exit 1 if there is any."""
    if path is None:
        path = packaged_rules()
        typer.echo(f"checking the packaged default rules in {path}")
    ruleset, problems = check_rules(path)
    if problems:
        console.print(f"[bold red]{len(problems)} problem(s) in {path}[/]", soft_wrap=True)
        for problem in problems:
            console.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    typer.echo(f"rules OK: {ruleset.summary()}")


class ExportFormat(str, Enum):
    prometheus = "prometheus"
    alertmanager = "alertmanager"


@rules_app.command("export")
def rules_export(
    path: Annotated[Path, typer.Argument(help="A rule file, or a directory of *.yaml rule files.")] = Path(
        "alerts"
    ),
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format", help="prometheus: recording + alerting rules; alertmanager: route + Slack receivers."
        ),
    ] = ExportFormat.prometheus,
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    slack_channel: Annotated[str, typer.Option(help="alertmanager: the Slack channel.")] = "#alerts",
    webhook_file: Annotated[
        str, typer.Option(help="alertmanager: file holding the Slack webhook URL (api_url_file).")
    ] = "/etc/alertmanager/slack_webhook_url",
) -> None:
    """The same SLA for Prometheus and Alertmanager users; rules PromQL cannot express are listed as comments."""
    from watchtower.rules.export_prometheus import alertmanager_yaml, prometheus_yaml

    ruleset, problems = check_rules(path)
    if problems:
        console.print(
            f"[bold red]{len(problems)} problem(s) in {path}[/]; run watchtower rules check", soft_wrap=True
        )
        raise typer.Exit(1)
    if fmt is ExportFormat.prometheus:
        text = prometheus_yaml(ruleset)
    else:
        text = alertmanager_yaml(ruleset, channel=slack_channel, webhook_file=webhook_file)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}", err=True)
