"""The `watchtower` command line."""

from __future__ import annotations

from pathlib import Path

import typer

from watchtower import __version__
from watchtower.cli.chaos import chaos_app
from watchtower.cli.common import Context, console, ctx_of
from watchtower.cli.dashboards import dashboards_app
from watchtower.cli.demo import demo as demo_command
from watchtower.cli.pipeline import pipeline_app
from watchtower.cli.rules import rules_app
from watchtower.cli.run import run as run_command
from watchtower.cli.scaling import scaling_app
from watchtower.cli.silence import silence_app
from watchtower.cli.stack import stack_app

app = typer.Typer(
    name="watchtower",
    help="SLA guardrail for real-time data pipelines: run the reference pipeline, measure it, alert on it.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect and validate configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(rules_app, name="rules")
app.add_typer(stack_app, name="stack")
app.add_typer(silence_app, name="silence")
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(scaling_app, name="scaling")
app.add_typer(chaos_app, name="chaos")


@app.callback()
def _root(
    ctx: typer.Context,
    config: Path = typer.Option(
        None,
        "--config",
        "-c",
        envvar="WATCHTOWER_CONFIG",
        help="YAML config file (environment overrides: WATCHTOWER__SECTION__KEY).",
    ),
) -> None:
    ctx.obj = Context(config)


@app.command()
def version() -> None:
    """Print the watchtower version."""
    print(__version__)


app.command("run")(run_command)
app.command("demo")(demo_command)


@config_app.command("check")
def config_check(ctx: typer.Context) -> None:
    """Validate the config file and the environment overrides; print the effective config (secrets masked)."""
    cfg = ctx_of(ctx).config
    console.print_json(cfg.model_dump_json(indent=2))
    if cfg.alerting.rules is None:
        from watchtower.rules.packaged import packaged_rules

        console.print(
            f"alerting.rules is not set: the packaged default rules in {packaged_rules()}", highlight=False
        )
    console.print("[green]config OK[/]")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
