"""Lint of the dashboards as code, and the committed JSON against a fresh build.

Every panel has a title, a description, a unit and the datasource variable; UIDs and panel ids are unique;
no query names a metric the catalog lacks (or a series the exported rules do not record); every catalog
metric is drawn somewhere; every rule has its panel and its Slack link points there; the files decode back
through grafana-foundation-sdk's models; a new catalog source gets a board; chaos faults are an annotation
on every board and scaling actions one on the scaling board; ratios and shares draw as percentunit, seconds
as "s"; the scaling board draws desired against current replicas on one panel per target.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import prometheus as prom_models

from watchtower.core.dashboard_links import rule_link
from watchtower.core.types import Kind, MetricSpec
from watchtower.dashboards import provisioning, render
from watchtower.dashboards.layout import catalog_sources, dashboards, metrics_in
from watchtower.exposition.catalog import all_specs
from watchtower.rules.config import load_rules
from watchtower.rules.export_prometheus import export

REPO = Path(__file__).resolve().parents[3]
DASHBOARDS = REPO / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@pytest.fixture(scope="module")
def ruleset():
    return load_rules(REPO / "alerts")


@pytest.fixture(scope="module")
def files() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def test_committed_dashboards_are_a_fresh_build(ruleset, files) -> None:
    boards = dashboards(ruleset)
    assert sorted(files) == sorted(f"{b.uid}.json" for b in boards), "run: watchtower dashboards build"
    for b in boards:
        assert (DASHBOARDS / f"{b.uid}.json").read_text() == render.to_json(b), (
            f"{b.uid}: run watchtower dashboards build"
        )


def test_committed_provisioning_is_a_fresh_build(tmp_path) -> None:
    assert provisioning.stale(DASHBOARDS / "provisioning") == [], "run: watchtower dashboards build"
    # The same check fails on a changed file: a copy of the committed ones with one value edited.
    copy = tmp_path / "provisioning"
    shutil.copytree(DASHBOARDS / "provisioning", copy)
    ds = copy / "datasources" / "prometheus.yaml"
    ds.write_text(ds.read_text().replace("timeInterval: 15s", "timeInterval: 30s"))
    assert provisioning.stale(copy) == [Path("datasources") / "prometheus.yaml"]


def test_provisioning_files_point_at_the_boards() -> None:
    provider = yaml.safe_load((DASHBOARDS / "provisioning" / "dashboards" / "watchtower.yaml").read_text())
    [p] = provider["providers"]
    assert p["type"] == "file" and p["folderUid"] == "watchtower" and p["options"]["path"]
    ds = yaml.safe_load((DASHBOARDS / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    [d] = ds["datasources"]
    assert d["type"] == "prometheus" and d["url"].startswith("http") and d["isDefault"] is True


def test_files_decode_through_the_sdk_models(files) -> None:
    for name, raw in files.items():
        d = render.decode(DASHBOARDS / name)
        assert isinstance(d, models.Dashboard) and d.uid == raw["uid"] and d.title == raw["title"]
        assert len(d.panels) == len(raw["panels"])
        for panel in d.panels:
            if isinstance(panel, models.RowPanel):
                continue
            assert isinstance(panel, models.Panel) and panel.type_val in ("timeseries", "stat")
            assert panel.targets and all(isinstance(t, prom_models.Dataquery) for t in panel.targets)


def test_every_panel_has_title_description_unit_and_the_datasource_variable(files) -> None:
    problems = []
    for name, d in files.items():
        variables = {v["name"]: v for v in d["templating"]["list"]}
        assert (
            variables["datasource"]["type"] == "datasource"
            and variables["datasource"]["query"] == "prometheus"
        )
        for p in d["panels"]:
            if p["type"] == "row":
                continue
            where = f"{name} panel {p.get('id')} {p.get('title')!r}"
            if not p.get("title"):
                problems.append(f"{where}: no title")
            if not p.get("description"):
                problems.append(f"{where}: no description")
            if not p.get("fieldConfig", {}).get("defaults", {}).get("unit"):
                problems.append(f"{where}: no unit")
            if p.get("datasource") != DATASOURCE or any(
                t.get("datasource") != DATASOURCE for t in p["targets"]
            ):
                problems.append(f"{where}: not on the datasource variable")
            for t in p["targets"]:
                if any(
                    f"${v}" in t["expr"] and v not in variables for v in ("group", "topic", "job", "target")
                ):
                    problems.append(f"{where}: uses a variable the board does not define")
    assert problems == []


def test_uids_and_panel_ids_are_unique(files) -> None:
    uids = [d["uid"] for d in files.values()]
    assert len(uids) == len(set(uids))
    for name, d in files.items():
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), name


def test_no_query_names_a_metric_the_catalog_lacks_and_every_metric_is_drawn(ruleset, files) -> None:
    known = set()
    for _, s in all_specs():
        known.add(s.name)
        if s.kind is Kind.HISTOGRAM:
            known |= {s.name + "_bucket", s.name + "_count", s.name + "_sum"}
    recorded = {r["record"] for g in export(ruleset)[0]["groups"] for r in g["rules"] if "record" in r}
    used: set[str] = set()
    for name, d in files.items():
        for a in d["annotations"]["list"]:
            names = metrics_in(a["expr"])
            assert names and not names - known, f"{name} annotation {a['name']}: {sorted(names - known)}"
            used |= names
        for p in d["panels"]:
            for t in p.get("targets", []):
                names = metrics_in(t["expr"])
                assert names, f"{name} {p['title']}: a query that reads no metric: {t['expr']}"
                unknown = names - known - recorded
                assert not unknown, (
                    f"{name} {p['title']}: {sorted(unknown)} in neither the catalog nor the recording rules"
                )
                used |= names
    drawn = {n.removesuffix("_bucket") for n in used}
    assert {s.name for _, s in all_specs()} - drawn == set()


def test_metrics_in_sees_names_not_label_values() -> None:
    assert metrics_in(
        'sum by (le) (rate(watchtower_x_bucket{a="watchtower_y"}[5m])) / slo:sli_error:ratio_rate5m{slo="b"}'
    ) == {"watchtower_x_bucket", "slo:sli_error:ratio_rate5m"}


def test_every_rule_has_its_panel_with_its_bound_and_its_link_points_there(ruleset) -> None:
    sla = next(b for b in dashboards(ruleset) if b.uid == "watchtower-sla")
    panels = {p.key: p for p in sla.panels()}
    for rule in ruleset.rules:
        p = panels[f"rule:{rule.name}"]
        assert rule.dashboard == rule_link("http://localhost:3000", rule.name)
        assert rule.dashboard.endswith(f"/d/watchtower-sla/watchtower-sla?viewPanel={p.id(sla.uid)}")
    assert panels["rule:consumer-lag-messages-high"].thresholds == (10000.0,)
    kafka = next(b for b in dashboards(ruleset) if b.uid == "watchtower-kafka")
    assert {p.key: p.thresholds for p in kafka.panels()}["watchtower_consumer_lag_messages"] == (10000.0,)


def test_panel_ids_do_not_move_when_a_rule_is_added(ruleset) -> None:
    from watchtower.rules.config import RuleSet

    before = {
        p.key: p.id("watchtower-sla")
        for b in dashboards(ruleset)
        if b.uid == "watchtower-sla"
        for p in b.panels()
    }
    fewer = RuleSet(ruleset.rules[1:], ruleset.routes, ruleset.files)
    after = {
        p.key: p.id("watchtower-sla")
        for b in dashboards(fewer)
        if b.uid == "watchtower-sla"
        for p in b.panels()
    }
    assert all(before[k] == v for k, v in after.items())


def test_a_new_catalog_source_gets_a_board_of_its_own(ruleset) -> None:
    # Specs made up for this test only: how a new collector appears without code in layout.py.
    queue = (MetricSpec("watchtower_test_queue_depth", Kind.GAUGE, "Jobs waiting.", ("job",)),)
    boards = dashboards(ruleset, {**catalog_sources(), "queue": queue})
    new = next(b for b in boards if b.uid == "watchtower-queue")
    [p] = list(new.panels())
    assert p.targets[0].expr == 'watchtower_test_queue_depth{job=~"$job"}' and "job" in new.variables
    assert [a.expr for a in new.annotations] == ["watchtower_chaos_fault_active > 0"]


def test_chaos_faults_annotate_every_board_and_scaling_actions_the_scaling_board(files) -> None:
    chaos = {
        "expr": "watchtower_chaos_fault_active > 0",
        "titleFormat": "chaos: {{scenario}} {{fault}}",
        "tagKeys": "scenario,fault",
        "datasource": DATASOURCE,
        "enable": True,
    }
    for name, d in files.items():
        annotations = d["annotations"]["list"]
        assert any(all(a.get(k) == v for k, v in chaos.items()) for a in annotations), name
        decoded = render.decode(DASHBOARDS / name).annotations.list_val
        assert [a.expr for a in decoded] == [a["expr"] for a in annotations]
    scaling = files["watchtower-scaling.json"]["annotations"]["list"]
    [actions] = [a for a in scaling if "watchtower_scaling_last_action_timestamp_seconds" in a["expr"]]
    assert actions["titleFormat"] == "{{target}} scaled" and "$target" in actions["expr"]
    assert actions["useValueForTime"] is True and actions["expr"].endswith("* 1000")  # Grafana takes ms
    assert not any(
        "scaling_last_action" in a["expr"]
        for n, d in files.items()
        if n != "watchtower-scaling.json"
        for a in d["annotations"]["list"]
    )


def test_scaling_board_draws_desired_against_current_per_target(files) -> None:
    d = files["watchtower-scaling.json"]
    [target] = [v for v in d["templating"]["list"] if v["name"] == "target"]
    assert target["query"] == "label_values(watchtower_scaling_desired_replicas, target)"
    [replicas] = [p for p in d["panels"] if p["title"].startswith("Replicas of $target")]
    exprs = [t["expr"] for t in replicas["targets"]]
    assert exprs[:2] == [
        'watchtower_scaling_desired_replicas{target=~"$target"}',
        'watchtower_scaling_current_replicas{target=~"$target"}',
    ]
    assert replicas["repeat"] == "target"
    titles = {p["title"] for p in d["panels"]}
    assert {"Scaling actions (per 5 minutes)", "Scaling vetoes (per 5 minutes)", "Scaling veto"} <= titles
    for p in d["panels"]:
        for t in p.get("targets", []):
            assert 'target=~"$target"' in t["expr"], (p["title"], t["expr"])


def _ratio(spec: MetricSpec) -> bool:
    return spec.name.endswith(("_ratio", "_share")) or "(0..1)" in spec.help


def test_ratios_draw_as_percentunit_and_seconds_as_s(files) -> None:
    specs = {s.name: s for _, s in all_specs()}
    assert {n for n, s in specs.items() if _ratio(s)} >= {
        "watchtower_pipeline_outcome_share",
        "watchtower_backpressure_ratio",
        "watchtower_busy_ratio",
    }
    checked, problems = 0, []
    for name, d in files.items():
        for p in d["panels"]:
            if p["type"] == "row":
                continue
            read = {m.removesuffix("_bucket") for t in p["targets"] for m in metrics_in(t["expr"])}
            read = {specs[m] for m in read if m in specs and specs[m].kind is not Kind.COUNTER}
            unit = p["fieldConfig"]["defaults"]["unit"]
            if read and all(_ratio(s) for s in read):
                checked += 1
                if unit != "percentunit":
                    problems.append(f"{name} {p['title']!r}: a ratio drawn as {unit}")
            if read and all(s.name.endswith("_seconds") for s in read):
                checked += 1
                if unit != "s":
                    problems.append(f"{name} {p['title']!r}: seconds drawn as {unit}")
            if any(m.name == "watchtower_dlq_growth_per_minute" for m in read) and unit != "cpm":
                problems.append(f"{name} {p['title']!r}: per minute drawn as {unit}")
    assert problems == [] and checked >= 20
