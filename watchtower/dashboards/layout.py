"""What the dashboards show, as plain data: dashboards, rows, panels and their PromQL, built from the metric
catalog and the rule set. No Grafana SDK here (render.py turns boards into JSON with it); the links the
rule loader stamps on each rule come from watchtower/core/dashboard_links.py, which this module shares its
ids with.

    dashboards(ruleset) -> [Board]        one function per panel group (`*_rows`), see GROUPS
    links.rule_link(base_url, name) -> URL  the panel that draws the rule against its bound

Stable identity: a board's UID is fixed (`watchtower-<name>`), a panel's id is a hash of its key (the
metric or rule it draws), so links in old Slack messages keep pointing at the same panel when panels are
added or moved. Sources of the catalog with no group function of their own get a generic row on a board of
their own, so a new collector appears without code here; the `chaos` source (the faults chaos runs
inject) is drawn as annotations on every board instead, and the scaling board marks scaling actions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from watchtower.core import dashboard_links as links
from watchtower.core.dashboard_links import board_uid, panel_id
from watchtower.core.types import Kind, MetricSpec
from watchtower.rules.base import RuleBase
from watchtower.rules.config import RuleSet
from watchtower.rules.export_prometheus import (
    NotExpressible,
    bound_of,
    burn_windows,
    duration,
    sli_series,
    value_expr,
)
from watchtower.rules.kinds.burn_rate import BurnRateRule
from watchtower.rules.kinds.consumer_status import ConsumerStatusRule

DATASOURCE_VAR = "datasource"
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    metric: str  # label_values(<metric>, <name>)


VARIABLES = {
    "group": Variable("group", "Consumer group", "watchtower_consumer_group_lag_messages"),
    "topic": Variable("topic", "Topic", "watchtower_topic_produce_rate_messages_per_second"),
    "job": Variable("job", "Job", "watchtower_checkpoint_duration_seconds"),
    "target": Variable("target", "Scaling target", "watchtower_scaling_desired_replicas"),
}


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Annotation:
    """A Prometheus annotation: every step at which `expr` has a series marks the graphs, titled by
    `title` (Grafana's titleFormat, `{{label}}` placeholders) and tagged with the values of `tags`."""

    name: str
    expr: str
    title: str
    tags: tuple[str, ...] = ()
    color: str = "purple"
    # The series' value (epoch ms) is when it happened (Grafana's useValueForTime).
    value_is_time: bool = False


@dataclass(frozen=True)
class Panel:
    key: str  # stable identity within the board: the metric or rule it draws
    title: str
    description: str
    unit: str
    targets: tuple[Target, ...]
    kind: str = "timeseries"  # or "stat"
    thresholds: tuple[float, ...] = ()
    # Why this panel can be empty on a healthy pipeline ("incident": only during one), shown in docs and tests.
    incident: str = ""
    repeat: str = ""  # a template variable: one copy of the panel per selected value

    def id(self, board_uid: str) -> int:
        return panel_id(board_uid, self.key)


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    description: str
    rows: tuple[Row, ...]
    variables: tuple[str, ...] = ()
    annotations: tuple[Annotation, ...] = ()

    @property
    def uid(self) -> str:
        return board_uid(self.name)

    def panels(self) -> Iterable[Panel]:
        for row in self.rows:
            yield from row.panels


def rule_panel_key(rule: RuleBase) -> str:
    return links.rule_panel_key(rule.name)


# ------------------------------------------------------------------------------------------- helpers


def unit_of(spec: MetricSpec) -> str:
    """Grafana's unit id for a metric: the spec's own `unit`, else from the Prometheus naming conventions of
    its name."""
    if spec.unit:
        return spec.unit
    n = spec.name
    if n.endswith("_timestamp_seconds"):
        return "s"  # drawn as an age: time() - metric
    if spec.kind is Kind.COUNTER:
        return "s" if n.endswith("_seconds_total") else "cps"
    for suffix, unit in (
        ("_seconds", "s"),
        ("_bytes", "bytes"),
        ("_ratio", "percentunit"),
        ("_per_second", "ops"),
    ):
        if n.endswith(suffix):
            return unit
    return "short"


def _filters(spec: MetricSpec, variables: Sequence[str]) -> str:
    return ", ".join(f'{v}=~"${v}"' for v in variables if v in spec.label_names)


def _legend(names: Iterable[str]) -> str:
    return " ".join(f"{{{{{n}}}}}" for n in names) or "__auto"


def spec_target(spec: MetricSpec, variables: Sequence[str] = ()) -> Target:
    """The default query of a metric: gauges as they are, counters as rates, histograms as p99."""
    f = _filters(spec, variables)
    sel = f"{spec.name}{{{f}}}" if f else spec.name
    labels = spec.label_names
    if spec.name.endswith("_timestamp_seconds"):
        return Target(f"time() - {sel}", _legend(labels))
    if spec.kind is Kind.COUNTER:
        return Target(f"rate({sel}[{RATE}])", _legend(labels))
    if spec.kind is Kind.HISTOGRAM:
        by = ", ".join(("le", *labels))
        b = f"{spec.name}_bucket{{{f}}}" if f else f"{spec.name}_bucket"
        return Target(
            f"histogram_quantile(0.99, sum by ({by}) (rate({b}[{RATE}])))", "p99 " + _legend(labels)
        )
    return Target(sel, _legend(labels))


def _title(spec: MetricSpec) -> str:
    words = spec.name.removeprefix("watchtower_").replace("_", " ")
    if spec.kind is Kind.COUNTER:
        words = words.removesuffix(" total") + " per second"
    if spec.name.endswith("_timestamp_seconds"):
        words = words.removesuffix(" timestamp seconds") + " (age)"
    if spec.kind is Kind.HISTOGRAM:
        words += " p99"
    return words[:1].upper() + words[1:]


def rule_bounds(ruleset: RuleSet) -> dict[str, tuple[float, ...]]:
    """metric name -> bounds of threshold-like rules selecting it as they are (drawn on that metric's panel)."""
    out: dict[str, set[float]] = {}
    for rule in ruleset.rules:
        sel = getattr(rule, "selector", None)
        if sel is None or getattr(rule, "kind", "") not in ("threshold", "time_to_breach"):
            continue
        b = bound_of(rule)
        if b is not None:
            out.setdefault(sel.metric, set()).add(b)
    return {k: tuple(sorted(v)) for k, v in out.items()}


@dataclass
class Context:
    """What every group function gets: the catalog by source, the rule set and each metric's rule bounds."""

    sources: dict[str, tuple[MetricSpec, ...]]
    ruleset: RuleSet
    bounds: dict[str, tuple[float, ...]] = field(default_factory=dict)
    placed: set[str] = field(default_factory=set)  # metric names already on a panel of the board

    def spec(self, name: str) -> MetricSpec | None:
        for specs in self.sources.values():
            for s in specs:
                if s.name == name:
                    return s
        return None

    def metric_panel(
        self, spec: MetricSpec, variables: Sequence[str], *, incident: str = "", title: str = ""
    ) -> Panel:
        self.placed.add(spec.name)
        return Panel(
            key=spec.name,
            title=title or _title(spec),
            description=spec.help,
            unit=unit_of(spec),
            targets=(spec_target(spec, variables),),
            thresholds=self.bounds.get(spec.name, ()),
            incident=incident,
        )

    def generic_row(
        self,
        title: str,
        specs: Iterable[MetricSpec],
        variables: Sequence[str],
        incident: dict[str, str] | None = None,
    ) -> Row:
        incident = incident or {}
        panels = tuple(
            self.metric_panel(s, variables, incident=incident.get(s.name, ""))
            for s in specs
            if s.name not in self.placed
        )
        return Row(title, panels)


# ------------------------------------------------------------------------------------------- groups


def sla_rows(ctx: Context) -> list[Row]:
    """Each rule against its bound, burn rates and budget, e2e latency against the SLO, canary freshness."""
    rule_panels = []
    for rule in ctx.ruleset.rules:
        if isinstance(rule, ConsumerStatusRule):
            rule_panels.append(_consumer_status_panel(rule))
            continue
        try:
            expr = value_expr(rule)
        except NotExpressible:
            continue
        bound = bound_of(rule)
        rule_panels.append(
            Panel(
                key=rule_panel_key(rule),
                title=f"Rule {rule.name}",
                description=f"{rule.kind} rule {rule.name} ({rule.severity.value}): what it measures, "
                f"with its bound as a threshold line."
                + (f" Summary: {rule.summary}" if rule.summary else ""),
                unit=_rule_unit(ctx, rule),
                targets=(Target(expr, _legend(getattr(rule, "by", ()))),),
                thresholds=(bound,) if bound is not None else (),
            )
        )
    rows = [Row("Rules against their bounds", tuple(rule_panels))]
    state = ctx.spec("watchtower_alert_state")
    if state is not None:
        rows[0] = Row(
            rows[0].title,
            (
                ctx.metric_panel(state, (), incident="only pending and firing alerts have a series"),
                *rows[0].panels,
            ),
        )
    burn = [r for r in ctx.ruleset.rules if isinstance(r, BurnRateRule)]
    if burn:
        rows.append(Row("Error budgets", tuple(p for r in burn for p in _burn_panels(r))))
    latency = [
        ctx.spec(n)
        for n in (
            "watchtower_e2e_latency_seconds",
            "watchtower_canary_latency_seconds",
            "watchtower_canary_pending",
        )
    ]
    rows.append(Row("Freshness", tuple(ctx.metric_panel(s, ()) for s in latency if s is not None)))
    rows.append(ctx.generic_row("Canary", ctx.sources.get("canary", ()), ()))
    return rows


def _rule_unit(ctx: Context, rule: RuleBase) -> str:
    if isinstance(rule, BurnRateRule):
        return "x"
    if rule.kind == "rate":
        return "cpm"
    sel = getattr(rule, "selector", None) or getattr(getattr(rule, "output", None), "selector", None)
    spec = ctx.spec(sel.metric) if sel is not None else None
    return unit_of(spec) if spec is not None else "short"


def _consumer_status_panel(rule: ConsumerStatusRule) -> Panel:
    return Panel(
        key=rule_panel_key(rule),
        title=f"Rule {rule.name}",
        description="Consumer status per group as watchtower evaluates it (Burrow's STOP/STALL/REWIND/WARN/OK): "
        "one series per group at its current status.",
        unit="short",
        targets=(Target("watchtower_consumer_group_status == 1", "{{group}} {{status}}"),),
        kind="stat",
    )


def _burn_panels(rule: BurnRateRule) -> list[Panel]:
    budget = 1 - rule.objective
    burn = tuple(
        Target(f"{sli_series(rule, w)} / {budget:.10g}", f"burn {duration(w)}") for w in burn_windows(rule)
    )
    longest = max(burn_windows(rule))
    return [
        Panel(
            key=f"burn:{rule.name}",
            title=f"Burn rate {rule.name}",
            description=f"Error budget burn rate per window (1 = spending the budget of a {rule.objective:.4g} objective "
            f"exactly). Needs the exported recording rules (watchtower rules export --format prometheus).",
            unit="x",
            targets=burn,
            thresholds=tuple(sorted({w.factor for w in rule.windows})),
        ),
        Panel(
            key=f"budget:{rule.name}",
            title=f"Error budget left {rule.name}",
            description=f"Share of the error budget left over {duration(longest)} (the longest window).",
            unit="percentunit",
            targets=(Target(f"1 - {sli_series(rule, longest)} / {budget:.10g}", "budget left"),),
            kind="stat",
        ),
    ]


def kafka_rows(ctx: Context) -> list[Row]:
    """Lag per group and partition in messages and seconds, time to drain, status, members, rates."""
    v = ("group", "topic")
    s = ctx.spec

    def row(title: str, names: Sequence[str], incident: dict[str, str] | None = None) -> Row:
        return Row(
            title,
            tuple(
                ctx.metric_panel(sp, v, incident=(incident or {}).get(sp.name, ""))
                for sp in map(s, names)
                if sp is not None
            ),
        )

    rows = [
        row(
            "Lag",
            [
                "watchtower_consumer_group_lag_messages",
                "watchtower_consumer_group_max_lag_seconds",
                "watchtower_consumer_lag_messages",
                "watchtower_consumer_lag_seconds",
                "watchtower_consumer_group_drain_seconds",
            ],
            {"watchtower_consumer_group_drain_seconds": "only while a group has lag to drain"},
        ),
        row(
            "Groups",
            [
                "watchtower_consumer_group_status",
                "watchtower_consumer_group_state",
                "watchtower_consumer_group_members",
            ],
        ),
        row(
            "Rates",
            [
                "watchtower_topic_produce_rate_messages_per_second",
                "watchtower_consumer_group_consume_rate_messages_per_second",
            ],
        ),
    ]
    rows.append(ctx.generic_row("Offsets and probes", ctx.sources.get("kafka_lag", ()), v))
    return rows


def pipeline_rows(ctx: Context) -> list[Row]:
    """Records in/out, Spark trigger phases, Flink checkpoints and backpressure, DLQ growth by reason, e2e."""
    v = ("job",)
    rows = [ctx.generic_row("End-to-end latency", ctx.sources.get("e2e_latency", ()), v)]
    dlq = ctx.spec("watchtower_dlq_topic_records_total")
    dlq_panels = []
    if dlq is not None:
        ctx.placed.add(dlq.name)
        dlq_panels.append(
            Panel(
                key="dlq-by-reason",
                title="DLQ growth by reason",
                description=dlq.help + " Per reason, per minute.",
                unit="cpm",
                targets=(Target(f"sum by (reason) (rate({dlq.name}[{RATE}])) * 60", "{{reason}}"),),
                thresholds=ctx.bounds.get("watchtower_dlq_growth_per_minute", ()),
            )
        )
    generic = ctx.generic_row("Dead letters", ctx.sources.get("dlq", ()), ())
    rows.append(Row("Dead letters", (*dlq_panels, *generic.panels)))
    rows.append(
        ctx.generic_row(
            "Late, duplicate and future events; the watermark", ctx.sources.get("pipeline_outcomes", ()), v
        )
    )
    rows.append(ctx.generic_row("Spark", ctx.sources.get("spark_progress", ()), v))
    rows.append(ctx.generic_row("Flink", ctx.sources.get("flink", ()), v))
    return rows


def health_rows(ctx: Context) -> list[Row]:
    """watchtower's own health: collectors up, cycle durations, overruns; evaluation and notifications."""
    return [
        ctx.generic_row("Collectors", ctx.sources.get("daemon", ()), ()),
        ctx.generic_row("Alert evaluation and notifications", ctx.sources.get("alerting", ()), ()),
        # Empty without ha.enabled: one daemon, nothing to elect.
        ctx.generic_row("High availability (which daemon leads)", ctx.sources.get("ha", ()), ()),
    ]


def scaling_rows(ctx: Context) -> list[Row]:
    """Per target: desired against current replicas on one panel, the actions and the guards holding a
    change back; then the inputs of the sizing."""
    v = ("target",)
    sel = 'target=~"$target"'
    replicas = [ctx.spec(f"watchtower_scaling_{n}_replicas") for n in ("desired", "current", "required")]
    rows = []
    if all(s is not None for s in replicas):
        ctx.placed.update(s.name for s in replicas if s is not None)
        rows.append(
            Row(
                "Replicas",
                (
                    Panel(
                        key="replicas",
                        title="Replicas of $target: desired, current, required",
                        description="What the policy wants now (desired, bounded and held back while a guard "
                        "vetoes), what the actuator reports (current) and what the measured need asks for "
                        "before the bounds (required). One panel per target.",
                        unit="short",
                        targets=tuple(
                            Target(f"{s.name}{{{sel}}}", f"{{{{target}}}} {n}")
                            for s, n in zip(replicas, ("desired", "current", "required"), strict=True)
                            if s is not None
                        ),
                        repeat="target",
                    ),
                ),
            )
        )
    actions = []
    for name, what in (
        ("watchtower_scaling_actions_total", "direction"),
        ("watchtower_scaling_vetoes_total", "kind"),
    ):
        spec = ctx.spec(name)
        if spec is None:
            continue
        ctx.placed.add(name)
        actions.append(
            Panel(
                key=name,
                title=_title(spec).removesuffix(" per second") + " (per 5 minutes)",
                description=spec.help + " Counted over 5 minutes.",
                unit="short",
                targets=(
                    Target(
                        f"sum by (target, {what}) (increase({name}{{{sel}}}[5m]))",
                        f"{{{{target}}}} {{{{{what}}}}}",
                    ),
                ),
            )
        )
    for name in ("watchtower_scaling_veto", "watchtower_scaling_apply_errors_total"):
        spec = ctx.spec(name)
        if spec is not None:
            actions.append(ctx.metric_panel(spec, v))
    incident = {
        "watchtower_scaling_last_action_replicas": "only after the controller applied a scaling action",
        "watchtower_scaling_last_action_timestamp_seconds": "only after the controller applied a scaling "
        "action",
        "watchtower_scaling_partition_stuck": "only while a partition is stuck (it has lag and its committed "
        "offset stopped while the others moved)",
        "watchtower_scaling_capacity_per_replica": "only once the capacity of a replica is measured (the "
        "consumers fell behind) or hinted (policy.per_replica_rate), in capacity mode",
    }
    for name in (
        "watchtower_scaling_last_action_replicas",
        "watchtower_scaling_last_action_timestamp_seconds",
    ):
        spec = ctx.spec(name)
        if spec is not None:
            actions.append(ctx.metric_panel(spec, v, incident=incident[name]))
    rows.append(Row("Actions and vetoes", tuple(actions)))
    rows.append(ctx.generic_row("Sizing inputs", ctx.sources.get("scaling", ()), v, incident))
    return rows


def scaling_annotations(ctx: Context) -> tuple[Annotation, ...]:
    """Each applied scaling action, on the scaling board's graphs, at the time it was applied: the value of
    the last action's timestamp is the annotation's time, so an action is marked even when it came before
    the first scrape (an increase() of the actions counter misses that one) or between two scrapes."""
    spec = ctx.spec("watchtower_scaling_last_action_timestamp_seconds")
    if spec is None:
        return ()
    return (
        Annotation(
            "Scaling actions",
            f'{spec.name}{{target=~"$target"}} * 1000',
            "{{target}} scaled",
            ("target",),
            "blue",
            value_is_time=True,
        ),
    )


@dataclass(frozen=True)
class Group:
    name: str
    title: str
    description: str
    rows: Callable[[Context], list[Row]]
    sources: tuple[str, ...]  # catalog sources this board covers
    variables: tuple[str, ...] = ()
    annotations: Callable[[Context], tuple[Annotation, ...]] = lambda ctx: ()


GROUPS: tuple[Group, ...] = (
    Group(
        "sla",
        "watchtower / SLA overview",
        "Is the pipeline within its SLA? Each rule against its bound, error budgets, freshness.",
        sla_rows,
        ("canary",),
    ),
    Group(
        "kafka",
        "watchtower / Kafka",
        "Which consumer group is behind, by how much (messages and seconds), and is it draining?",
        kafka_rows,
        ("kafka_lag",),
        ("group", "topic"),
    ),
    Group(
        "pipeline",
        "watchtower / Pipeline",
        "Is the job keeping up, checkpointing, and where do bad records go?",
        pipeline_rows,
        ("e2e_latency", "dlq", "pipeline_outcomes", "spark_progress", "flink"),
        ("job",),
    ),
    Group(
        "health",
        "watchtower / Health",
        "Is watchtower itself measuring, evaluating and notifying?",
        health_rows,
        ("daemon", "alerting", "ha"),
    ),
    Group(
        "scaling",
        "watchtower / Scaling",
        "Does each scaling target run the replicas its load needs, and what held a change back?",
        scaling_rows,
        ("scaling",),
        ("target",),
        scaling_annotations,
    ),
)

# Catalog sources drawn as annotations on every board (their gauges > 0), not as panels.
ANNOTATION_SOURCES = ("chaos",)


def _annotations(sources: dict[str, tuple[MetricSpec, ...]]) -> tuple[Annotation, ...]:
    out = []
    for src in ANNOTATION_SOURCES:
        for spec in sources.get(src, ()):
            if spec.kind is Kind.GAUGE:
                out.append(
                    Annotation(
                        _title(spec),
                        f"{spec.name} > 0",
                        f"{src}: " + " ".join(f"{{{{{n}}}}}" for n in spec.label_names),
                        spec.label_names,
                        "red",
                    )
                )
    return tuple(out)


def catalog_sources() -> dict[str, tuple[MetricSpec, ...]]:
    """The metric catalog by source, in catalog order (only `all_specs()` is relied on)."""
    from watchtower.exposition.catalog import all_specs

    out: dict[str, list[MetricSpec]] = {}
    for source, spec in all_specs():
        out.setdefault(source, []).append(spec)
    return {k: tuple(v) for k, v in out.items()}


def dashboards(ruleset: RuleSet, sources: dict[str, tuple[MetricSpec, ...]] | None = None) -> list[Board]:
    """Every board: the fixed groups, then one generic board per catalog source no group covers."""
    if sources is None:
        sources = catalog_sources()
    bounds = rule_bounds(ruleset)
    annotations = _annotations(sources)
    boards = []
    covered: set[str] = set(ANNOTATION_SOURCES)
    for g in GROUPS:
        ctx = Context(sources, ruleset, bounds)
        rows = tuple(r for r in g.rows(ctx) if r.panels)
        if not rows:
            continue
        boards.append(
            Board(
                g.name,
                g.title,
                g.description,
                rows,
                (DATASOURCE_VAR, *g.variables),
                annotations + g.annotations(ctx),
            )
        )
        covered.update(g.sources)
    for src, specs in sources.items():
        if src in covered or not specs:
            continue
        ctx = Context(sources, ruleset, bounds)
        variables = tuple(v for v in VARIABLES if any(v in s.label_names for s in specs))
        row = ctx.generic_row(src.replace("_", " ").capitalize(), specs, variables)
        boards.append(
            Board(
                _slug(src),
                f"watchtower / {row.title}",
                f"Metrics of the {src} collector.",
                (row,),
                (DATASOURCE_VAR, *variables),
                annotations,
            )
        )
    return boards


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", name.lower())


def metrics_in(expr: str) -> set[str]:
    """Metric names a PromQL expression reads: watchtower's own and recorded series (`level:metric:ops`)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values are not names
    return set(re.findall(r"\b(?:watchtower_[a-zA-Z0-9_:]*|[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]+)", bare))
