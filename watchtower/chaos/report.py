"""What a chaos run leaves behind in `--report DIR`: one JSON journal per scenario run, one JUnit XML file
for CI (a test case per scenario) and one PNG timeline per scenario (matplotlib, the `chaos` extra):
lag seconds, e2e p95, DLQ rows and late share, the fault windows shaded, pages marked."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import orjson

from watchtower.chaos.runner import RunResult

log = logging.getLogger(__name__)


def write_journal(result: RunResult, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.scenario}-{result.run_id}.json"
    path.write_bytes(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2))
    return path


def junit_xml(results: list[RunResult], suite: str = "watchtower-chaos") -> bytes:
    """JUnit XML: one testcase per scenario; a failed verdict is a <failure> with every reason."""
    total = sum(r.ended_at - r.started_at for r in results)
    root = ET.Element(
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(sum(1 for r in results if not r.ok)),
        errors="0",
        time=f"{total:.3f}",
    )
    for r in results:
        case = ET.SubElement(
            root, "testcase", classname="chaos", name=r.scenario, time=f"{r.ended_at - r.started_at:.3f}"
        )
        if not r.ok:
            failures = r.failures()
            f = ET.SubElement(case, "failure", message=failures[0][:500] if failures else "failed")
            f.text = "\n".join(failures)
        out = ET.SubElement(case, "system-out")
        out.text = f"{r.purpose}\nrun {r.run_id}"
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def write_png(result: RunResult, pages: list[Any], directory: Path) -> Path | None:
    """The scenario's timeline; None (logged once) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed (pip install watchtower[chaos]): no PNG timelines")
        return None
    pts = result.timeline
    t0 = result.started_at
    series = (
        ("lag_seconds", "lag (s)"),
        ("e2e_p95", "e2e p95 (s)"),
        ("dlq_rows", "DLQ rows"),
        ("late_share", "late share"),
    )
    fig, axes = plt.subplots(len(series), 1, sharex=True, figsize=(9, 7))
    starts = {}
    for e in result.events:
        if e.get("action") == "start":
            starts.setdefault(e["step"], []).append(e["at"])
    windows = []
    for e in result.events:
        if e.get("action") in ("stop", "rollback") and "step" in e and starts.get(e["step"]):
            windows.append((starts[e["step"]].pop(0), e["at"], e["fault"]))
    for step_starts in starts.values():
        windows += [(s, s + 0.5, "") for s in step_starts]  # instantaneous faults: a thin band
    for ax, (key, label) in zip(axes, series, strict=True):
        xs = [p["at"] - t0 for p in pts if p.get(key) is not None]
        ys = [p[key] for p in pts if p.get(key) is not None]
        ax.plot(xs, ys, lw=1.2)
        ax.set_ylabel(label, fontsize=8)
        for a, b, _ in windows:
            ax.axvspan(a - t0, b - t0, color="tab:red", alpha=0.15)
        for pg in pages:
            ax.axvline(
                pg.at - t0, color="tab:orange" if pg.state == "firing" else "tab:green", lw=0.8, ls="--"
            )
    axes[0].set_title(
        f"{result.scenario} ({'pass' if result.ok else 'FAIL'}): faults shaded, pages dashed (orange fire, green resolve)",
        fontsize=9,
    )
    axes[-1].set_xlabel("seconds from the scenario start")
    fig.tight_layout()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.scenario}-{result.run_id}.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
