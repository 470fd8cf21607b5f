"""Boards (watchtower.dashboards.layout) into Grafana dashboard JSON through grafana-foundation-sdk's builders.

JSON is written only by the SDK's encoder; `decode` reads a file back through the SDK's models (what the
tests use to prove the files are valid dashboards). Needs the `grafana` extra.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as cbuild
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models

from watchtower.dashboards.layout import (
    DATASOURCE_VAR,
    VARIABLES,
    Annotation,
    Board,
    Panel,
    panel_id,
)

DATASOURCE = models.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VAR}}}")
WIDTH, HEIGHT = 8, 8


class PrometheusAnnotation(models.AnnotationQuery):
    """The SDK's annotation query plus the Prometheus datasource's own fields (titleFormat, tagKeys,
    textFormat, step), which its model does not carry; still encoded by the SDK's JSONEncoder."""

    def __init__(self, a: Annotation) -> None:
        super().__init__(
            name=a.name, datasource=DATASOURCE, enable=True, hide=False, icon_color=a.color, expr=a.expr
        )
        self.title_format = a.title
        self.tag_keys = ",".join(a.tags)
        self.use_value_for_time = a.value_is_time

    def to_json(self) -> dict[str, object]:
        return {
            **super().to_json(),
            "titleFormat": self.title_format,
            "tagKeys": self.tag_keys,
            "textFormat": "",
            "step": "15s",
            "useValueForTime": self.use_value_for_time,
        }


class _Built:
    """A built model where the SDK's dashboard builder takes a builder."""

    def __init__(self, model: object) -> None:
        self._model = model

    def build(self) -> object:
        return self._model


def _thresholds(bounds: tuple[float, ...]) -> db.ThresholdsConfig:
    steps = [models.Threshold(value=None, color="green")]
    colors = ("red", "orange", "yellow", "purple")
    steps += [
        models.Threshold(value=b, color=colors[min(i, len(colors) - 1)])
        for i, b in enumerate(sorted(bounds, reverse=True))
    ][::-1]
    return db.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE).steps(steps)


def panel(p: Panel, uid: str) -> Any:
    builder: Any = stat.Panel() if p.kind == "stat" else timeseries.Panel()
    builder = (
        builder.id(p.id(uid))
        .title(p.title)
        .description(p.description + (f" Empty unless: {p.incident}." if p.incident else ""))
        .unit(p.unit)
        .datasource(DATASOURCE)
        .height(HEIGHT)
        .span(WIDTH)
        .thresholds(_thresholds(p.thresholds))
    )
    if p.repeat:
        builder = builder.repeat(p.repeat).repeat_direction("h")
    if p.kind == "stat":
        builder = builder.graph_mode(common.BigValueGraphMode.AREA).reduce_options(
            cbuild.ReduceDataOptions().calcs(["lastNotNull"]).values(False)
        )
    else:
        builder = builder.legend(
            cbuild.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
    if p.kind != "stat" and p.thresholds:
        builder = builder.thresholds_style(
            cbuild.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.DASHED)
        )
    for i, t in enumerate(p.targets):
        builder = builder.with_target(
            prometheus.Dataquery()
            .expr(t.expr)
            .legend_format(t.legend)
            .ref_id(chr(ord("A") + i))
            .datasource(DATASOURCE)
            .range()
        )
    return builder


def variable(name: str) -> Any:
    if name == DATASOURCE_VAR:
        return db.DatasourceVariable(DATASOURCE_VAR).label("Data source").type("prometheus")
    v = VARIABLES[name]
    return (
        db.QueryVariable(v.name)
        .label(v.label)
        .datasource(DATASOURCE)
        .query(f"label_values({v.metric}, {v.name})")
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(models.VariableOption(selected=True, text="All", value="$__all"))
    )


def dashboard(board: Board) -> models.Dashboard:
    b = (
        db.Dashboard(board.title)
        .uid(board.uid)
        .description(board.description)
        .tags(["watchtower"])
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .editable()
    )
    for name in board.variables:
        b = b.with_variable(variable(name))
    for a in board.annotations:
        b = b.annotation(_Built(PrometheusAnnotation(a)))
    for row in board.rows:
        b = b.with_row(db.Row(row.title).id(panel_id(board.uid, f"row:{row.title}")))
        for p in row.panels:
            b = b.with_panel(panel(p, board.uid))
    return b.build()


def to_json(board: Board) -> str:
    return json.dumps(dashboard(board), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def decode(path: str | Path) -> models.Dashboard:
    """A dashboard file back through the SDK's JSON models (raises on a shape the SDK does not know)."""
    register_default_plugins()
    return models.Dashboard.from_json(json.loads(Path(path).read_text()))


def write_all(boards: list[Board], out: str | Path) -> list[Path]:
    """Write `<out>/<uid>.json` per board; return the paths (unchanged files are left alone)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for board in boards:
        path = out / f"{board.uid}.json"
        text = to_json(board)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written
