"""`watchtower scaling keda TARGET`: write the KEDA ScaledObject that follows watchtower's decision."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from watchtower.cli.common import console, fail
from watchtower.scale.keda import DEFAULT_VALUE_LOCATION, scaled_object

scaling_app = typer.Typer(help="Autoscaling helpers.", no_args_is_help=True)


@scaling_app.command("keda")
def keda(
    target: str = typer.Argument(..., help="The scaling target (its name under scaling.targets)."),
    scale_target: str = typer.Option(..., "--scale-target", help="The Deployment/StatefulSet KEDA scales."),
    watchtower_url: str = typer.Option(
        ...,
        "--watchtower-url",
        help="watchtower's HTTP API as KEDA reaches it, e.g. http://watchtower.ops:9108",
    ),
    namespace: str = typer.Option("default", "--namespace", "-n"),
    kind: str = typer.Option("Deployment", "--kind", help="Deployment or StatefulSet."),
    min_replicas: int = typer.Option(1, "--min"),
    max_replicas: int = typer.Option(10, "--max"),
    value_location: str = typer.Option(
        DEFAULT_VALUE_LOCATION, "--value-location", help="GJSON path of the desired replicas."
    ),
    polling_interval: int = typer.Option(15, "--polling-interval", help="Seconds between KEDA's polls."),
    output: Path = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
) -> None:
    """Print (or write) a ScaledObject whose metrics-api trigger reads /api/v1/scaling/TARGET."""
    if kind not in ("Deployment", "StatefulSet"):
        fail(f"--kind must be Deployment or StatefulSet, not {kind!r}", 2)
    try:
        doc = scaled_object(
            target,
            watchtower_url=watchtower_url,
            scale_target=scale_target,
            namespace=namespace,
            kind=kind,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            value_location=value_location,
            polling_interval=polling_interval,
        )
    except ValueError as exc:
        fail(str(exc), 2)
    text = yaml.safe_dump(doc, sort_keys=False)
    if output is None:
        print(text, end="")
    else:
        output.write_text(text)
        console.print(f"wrote {output}")
