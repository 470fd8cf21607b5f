"""`watchtower demo`: everything on one machine, live, stopped cleanly by Ctrl-C or --duration."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import typer
from rich.live import Live

from watchtower.cli.common import console, ctx_of, fail


def demo(
    ctx: typer.Context,
    duration: float = typer.Option(
        None, "--duration", min=1, help="Produce for this many seconds, then drain, stop and report."
    ),
    report: Path = typer.Option(None, "--report", help="Write the JSON count report here at the end."),
    rate: float = typer.Option(None, "--rate", min=1, help="Events per second (default: generator.rate)."),
    workers: int = typer.Option(
        None, "--workers", min=0, help="Enricher worker processes (default: workers.count)."
    ),
    keep_stack: bool = typer.Option(
        False, "--keep-stack", help="Leave the demo's broker and Redis running afterwards."
    ),
    clean: bool = typer.Option(
        False,
        "--clean",
        help="No injected faults (by default 1% duplicates, 0.5% malformed, 0.5% late events).",
    ),
    autoscale: bool = typer.Option(
        False,
        "--autoscale",
        help="Step the load up 3x and back (--rate is the base, default 300/s; --duration squeezes the ~3 min profile); the daemon scales the workers.",
    ),
) -> None:
    """Run the embedded broker and Redis, the event generator, the Spark job and the workers, with live progress.

    Ctrl-C stops producing, waits for the pipeline to drain, stops everything and prints the counts
    (a second Ctrl-C stops at once). With --duration S --report FILE it does the same by itself and
    writes whether every produced record is where the contract puts it, read back from the Delta tables and
    the DLQ topic by (partition, offset) (never from the job's own counters).
    """
    from watchtower.core.extras import MissingExtra, require_extra

    try:
        require_extra("spark", "pyspark", "pyarrow", what="watchtower demo (it runs the Spark job)")
    except MissingExtra as exc:
        fail(str(exc), 2)
    from watchtower.demo.display import live_table, status_line
    from watchtower.demo.runner import DemoOptions, DemoRun
    from watchtower.stack import StackError

    cfg = ctx_of(ctx).config
    run = DemoRun(
        cfg,
        DemoOptions(
            duration=duration,
            rate=rate,
            workers=workers,
            report=report,
            keep_stack=keep_stack,
            faults=not clean,
            autoscale=autoscale,
        ),
    )
    interrupts = 0

    def on_signal(*_):
        nonlocal interrupts
        interrupts += 1
        run.stop_producing.set()
        if interrupts > 1:
            run.abort.set()
            console.print("[red]second interrupt: stopping now[/]")
            run.stop()
            sys.exit(130)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    tty = console.is_terminal
    drained = False
    try:
        run.start()
        with (
            Live(live_table(run.state), console=console, refresh_per_second=2, transient=False)
            if tty
            else _NoLive() as live
        ):
            last_line = 0.0

            def tick():
                nonlocal last_line
                run.poll()
                if tty:
                    live.update(live_table(run.state))
                elif time.monotonic() - last_line > 5:
                    console.print(status_line(run.state), highlight=False)
                    last_line = time.monotonic()

            while run.producing():
                tick()
                run.abort.wait(1.0)
            if not run.abort.is_set():
                drained = run.drain(on_tick=tick)
            tick()
    except StackError as exc:
        fail(str(exc))
    finally:
        run.stop()
    doc = run.report(drained)
    console.print(live_table(run.state))
    verdict = "[green]every event accounted for[/]" if doc["adds_up"] else "[red]counts do NOT add up[/]"
    console.print(
        f"produced {doc.get('generator', {}).get('sent', 0):,}: sink {doc.get('in_sink', 0):,}, DLQ {doc.get('in_dlq', 0):,}, "
        f"late {doc.get('late', 0):,}, deduplicated {doc.get('deduplicated', 0):,}, control {doc.get('control', 0):,} -> {verdict}"
    )
    rb = doc.get("readback")
    if rb is not None:
        console.print(f"read back from the sinks: {rb['summary']}", highlight=False)
    if not drained:
        console.print("[yellow]the pipeline did not drain before the demo stopped; counts are partial[/]")
    if report:
        console.print(f"report written to {report}")
    raise typer.Exit(0 if doc["adds_up"] else 1)


class _NoLive:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, *_):
        pass
