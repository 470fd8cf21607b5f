"""The demo's live panel (rich) and the final summary. Pure rendering of `DemoState`."""

from __future__ import annotations

import time

from rich.table import Table

from watchtower.demo.runner import DemoState


def _n(v: float | int | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def live_table(s: DemoState) -> Table:
    t = Table(
        title=f"watchtower demo  [dim]{s.phase}, {time.monotonic() - s.started:,.0f}s[/]",
        show_header=False,
        expand=False,
    )
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column(justify="right")
    t.add_column(style="dim")
    t.add_row("events in", _n(s.sent), f"{_n(s.send_rate)}/s, {_n(s.delivered)} acknowledged")
    tot = s.totals
    if tot is not None:
        t.add_row(
            "rows read by Spark",
            _n(tot.input_rows),
            f"{tot.batches} micro-batches, {tot.failed_batches} failed",
        )
        t.add_row("  -> sink (Delta)", _n(tot.sink_rows), "deduplicated on event_id")
        t.add_row("  -> DLQ", _n(tot.dlq_rows), "malformed, with failure_reason")
        t.add_row("  -> late events", _n(tot.late_rows), "older than the watermark")
        t.add_row("  -> duplicates dropped", _n(tot.duplicate_rows), "")
    pr = s.progress
    if pr:
        t.add_row(
            "last micro-batch",
            pr.get("batch_id", "-"),
            f"{pr.get('input_rows', '-')} rows, {float(pr.get('processed_rows_per_second') or 0):,.0f} rows/s",
        )
    if s.latency:
        t.add_row(
            "e2e latency p50 / p95",
            f"{s.latency['p50_ms']:,.0f} / {s.latency['p95_ms']:,.0f} ms",
            "event time -> visible in Redis",
        )
    for name, lag in s.lag.items():
        t.add_row(f"lag {name}", _n(lag), "messages")
    t.add_row("workers", str(s.workers), "enricher processes")
    sc = s.scaling
    if sc:
        load = "" if s.target_rate is None else f"load step {s.target_rate:,.0f}/s; "
        t.add_row(
            "  autoscaling",
            f"{_n(sc.get('current'))} -> {_n(sc.get('wanted'))}",
            f"{load}actions {sc.get('actions') or {}}",
        )
        why = sc.get("reason") or ""
        t.add_row("  decision", sc.get("veto") or "ok", why if len(why) <= 60 else why[:57] + "...")
    w = s.watch
    if w:
        t.add_section()
        t.add_row("[bold]watchtower[/]", f"{w['up']}/{w['collectors']} up", s.daemon_url + "/metrics")
        for group, secs in (w.get("lag_seconds") or {}).items():
            t.add_row(
                f"  lag {group}",
                "-" if secs is None else f"{secs:,.1f} s",
                "age of the oldest unconsumed record",
            )
        for key, label, unit in (
            ("e2e_p95_s", "  e2e p95", "s"),
            ("canary_s", "  canary latency", "s"),
            ("checkpoint_s", "  spark trigger", "s"),
            ("dlq_per_min", "  DLQ growth", "/min"),
        ):
            if w.get(key) is not None:
                t.add_row(label, f"{w[key]:,.2f} {unit}", "")
    for err in s.errors[-3:]:
        t.add_row("[red]error[/]", "", err)
    return t


def status_line(s: DemoState) -> str:
    tot = s.totals
    read = tot.input_rows if tot else 0
    lat = f" p95={s.latency['p95_ms']:.0f}ms" if s.latency else ""
    lags = " ".join(f"lag_{k}={v}" for k, v in s.lag.items())
    return f"[{s.phase}] sent={s.sent} read={read}{lat} {lags}"
