"""`watchtower chaos list | check | run`: chaos scenarios with verdicts (docs/chaos.md)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from watchtower.cli.common import console, ctx_of, fail

chaos_app = typer.Typer(
    help="Chaos scenarios: inject faults, prove nothing was lost and that watchtower saw it.",
    no_args_is_help=True,
)

ScenarioPath = Annotated[
    Path | None, typer.Option("--scenarios", help="A scenario file or directory (default: chaos.scenarios).")
]


def _load(ctx: typer.Context, path: Path | None):
    from watchtower.chaos.faults import params_models
    from watchtower.chaos.scenario import check_scenarios
    from watchtower.rules.config import check_rules

    cfg = ctx_of(ctx).config
    ruleset, _ = check_rules(cfg.chaos.rules)
    rules = {r.name for r in ruleset.rules} if ruleset.rules else None
    return check_scenarios(path or cfg.chaos.scenarios, params_models(), rules)


def _problems(problems: list[str], where: Path | str) -> None:
    console.print(f"[bold red]{len(problems)} problem(s) in {where}[/]", soft_wrap=True)
    for p in problems:
        console.print(f"  {p}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@chaos_app.command("check")
def chaos_check(
    ctx: typer.Context,
    path: Annotated[Path | None, typer.Argument(help="Scenario file or directory.")] = None,
) -> None:
    """Validate scenario files: every problem with file:line and the fix; exit 1 if there is any."""
    scenarios, problems = _load(ctx, path)
    if problems:
        _problems(problems, path or ctx_of(ctx).config.chaos.scenarios)
    typer.echo(f"scenarios OK: {len(scenarios)} ({', '.join(s.name for s in scenarios)})")


@chaos_app.command("list")
def chaos_list(ctx: typer.Context, scenarios_path: ScenarioPath = None) -> None:
    """Every scenario with its one-line purpose."""
    scenarios, problems = _load(ctx, scenarios_path)
    for s in scenarios:
        typer.echo(f"{s.name:32s} {s.purpose}")
    if problems:
        _problems(problems, scenarios_path or ctx_of(ctx).config.chaos.scenarios)


@chaos_app.command("run")
def chaos_run(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None, typer.Argument(help="Scenario names (see `watchtower chaos list`).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Run every scenario.")] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write journals, JUnit XML and PNG timelines here.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; start nothing, touch nothing.")
    ] = False,
    keep_stack: Annotated[
        bool, typer.Option("--keep-stack", help="Leave the chaos stack running afterwards.")
    ] = False,
    silence: Annotated[
        list[str] | None,
        typer.Option(
            "--silence",
            help="Silence this rule for the run (repeatable): a scenario expecting it must then fail.",
        ),
    ] = None,
    scenarios_path: ScenarioPath = None,
) -> None:
    """Run scenarios on one shared embedded stack; exit 1 when any verdict fails."""
    from watchtower.chaos.runner import schedule
    from watchtower.config.chaos import target_refusal

    cfg = ctx_of(ctx).config
    scenarios, problems = _load(ctx, scenarios_path)
    if problems:
        _problems(problems, scenarios_path or cfg.chaos.scenarios)
    by_name = {s.name: s for s in scenarios}
    if all_:
        chosen = scenarios
    else:
        if not names:
            fail("name one or more scenarios, or pass --all (see `watchtower chaos list`)")
        unknown = [n for n in names if n not in by_name]
        if unknown:
            fail(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(sorted(by_name))}")
        chosen = [by_name[n] for n in names]
    refusal = target_refusal(cfg.kafka.bootstrap_servers, cfg.chaos.allow)
    if refusal:
        fail(refusal)
    if dry_run:
        for s in chosen:
            typer.echo(f"{s.name}: {s.purpose}")
            for at, action, i in schedule(s.method):
                step = s.method[i]
                typer.echo(f"  t+{at:6.1f}s {action:5s} {step.fault} {step.params or ''}")
            for a in s.expect.alerts:
                typer.echo(
                    f"  expect page {a.rule} within {a.within:.0f}s"
                    + (f", resolved within {a.resolve_within:.0f}s" if a.resolve_within else "")
                )
            typer.echo(
                f"  records: {s.expect.records}; steady state: {', '.join(p.name for p in s.steady_state.probes) or 'none'}"
            )
        return
    code = _run(cfg, chosen, report, keep_stack, tuple(silence or ()))
    raise typer.Exit(code)


def _run(cfg, chosen, report: Path | None, keep_stack: bool, silence: tuple[str, ...] = ()) -> int:
    from watchtower.chaos.env import ChaosEnv
    from watchtower.chaos.report import junit_xml, write_journal, write_png
    from watchtower.chaos.runner import ScenarioRunner

    interrupt = threading.Event()

    def on_signal(signum, _frame) -> None:
        console.print(f"[yellow]signal {signum}: undoing the faults and stopping[/]")
        interrupt.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    root = Path(cfg.stack.state_dir) / "chaos"
    env = ChaosEnv(cfg, root, keep_stack=keep_stack)
    results = []
    t0 = time.monotonic()
    try:
        console.print(f"starting the chaos stack under {root} ...")
        env.start()
        for rule in silence:
            env.silence(rule)
            console.print(f"silenced rule {rule} for this run")
        runner = ScenarioRunner(env, interrupt)
        for sc in chosen:
            if interrupt.is_set():
                break
            console.print(f"[bold]{sc.name}[/]: {sc.purpose}")
            res = runner.run(sc)
            results.append(res)
            mark = "[green]PASS[/]" if res.ok else "[red]FAIL[/]"
            console.print(f"  {mark} in {res.ended_at - res.started_at:.1f}s", highlight=False)
            if res.conservation is not None:
                console.print(f"  {res.conservation.summary()}", markup=False, highlight=False)
            if res.detection is not None:
                console.print(f"  detection: {res.detection.summary()}", markup=False, highlight=False)
            for f in res.failures():
                console.print(f"  [red]-[/] {f}", highlight=False)
            if report is not None:
                write_journal(res, report)
                write_png(res, env.pager.since(res.started_at), report)
    except Exception as exc:  # noqa: BLE001 - shown; the stack still goes down below
        console.print(f"[red]chaos run failed: {type(exc).__name__}: {exc}[/]")
        results_ok = False
    else:
        results_ok = True
    finally:
        env.stop()
    if report is not None:
        report.mkdir(parents=True, exist_ok=True)
        (report / "junit.xml").write_bytes(junit_xml(results))
    passed = sum(1 for r in results if r.ok)
    console.print(f"{passed}/{len(chosen)} scenarios passed in {time.monotonic() - t0:.0f}s")
    if interrupt.is_set():
        return 130
    return 0 if results_ok and passed == len(chosen) else 1
