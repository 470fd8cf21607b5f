"""`watchtower rules ...`: work with alert rule files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from watchtower.cli.common import console
from watchtower.rules.config import check_rules
from watchtower.rules.packaged import packaged_rules

rules_app = typer.Typer(help="Validate alert rule files.", no_args_is_help=True)


@rules_app.command("check")
def rules_check(
    path: Annotated[
        Path | None,
        typer.Argument(help="A rule file, or a directory of *.yaml rule files (default: the packaged default rules)."),
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
