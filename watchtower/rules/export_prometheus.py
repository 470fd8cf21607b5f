"""The SLA rules as Prometheus recording and alerting rules, and an Alertmanager config for their severities.

Users who already run Prometheus and Alertmanager get the same SLA from the same rule file:

    watchtower rules export --format prometheus alerts/ > watchtower.rules.yml
    watchtower rules export --format alertmanager alerts/ > alertmanager.yml

Per kind (each alert carries `severity`, `watchtower_rule` and `route` labels, the rule's summary, runbook
and the dashboard panel of the rule):

    threshold        agg by (by) (selector) <op> bound, with `for` and `keep_firing_for`
    rate             agg by (by) (rate(selector[window])) * 60 <op> bound  (per minute, resets handled)
    growth           value / clamp_min(min_over_time(value[window]), floor) >= factor and value >= min_value
                     over a recorded `value` (the lowest value within the window, as watchtower takes it;
                     a fixed `offset` would compare with one instant only)
    time_to_breach   predict_linear(value[window], horizon) <op> threshold over a recorded `value`
    throughput_floor output < floor and on(by) input > input_min (gauges averaged, counters as rates)
    burn_rate        Sloth-style recording rules slo:sli_error:ratio_rate<window>{slo="<rule>"} and one
                     multi-window alert per window pair (long and short both above factor x budget)
    consumer_status  not expressible (Burrow's sliding-window evaluation over offsets): a comment says so

Rule names become Prometheus names by `_` for anything outside [a-zA-Z0-9_]; recorded series are
`watchtower_rule:<name>:value`. The functions here are pure: the rule set in, text or dicts out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

from watchtower.rules.base import Op, RuleBase, fmt_duration
from watchtower.rules.config import RuleSet
from watchtower.rules.kinds.burn_rate import BurnRateRule, BurnWindow
from watchtower.rules.kinds.consumer_status import ConsumerStatusRule
from watchtower.rules.kinds.growth import GrowthRule
from watchtower.rules.kinds.rate import RateRule
from watchtower.rules.kinds.threshold import ThresholdRule
from watchtower.rules.kinds.throughput import Signal, ThroughputFloorRule
from watchtower.rules.kinds.time_to_breach import TimeToBreachRule
from watchtower.rules.selector import Selector
from watchtower.rules.series import Aggregate

RECORDING_GROUP = "watchtower-recording"
ALERTING_GROUP = "watchtower-alerts"


class NotExpressible(Exception):
    """The rule kind has no PromQL equivalent; the message says why."""


def prom_name(rule_name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", rule_name)


def recorded(rule: RuleBase) -> str:
    return f"watchtower_rule:{prom_name(rule.name)}:value"


def duration(seconds: float) -> str:
    """A PromQL duration (`90s`, `5m`, `1h`); Prometheus rejects fractions, so they round up to ms."""
    if seconds != int(seconds):
        return f"{round(seconds * 1000)}ms"
    return fmt_duration(seconds)


def selector(sel: Selector) -> str:
    return str(sel)


def _by(by: Iterable[str]) -> str:
    return ", ".join(by)


def aggregate(expr: str, how: Aggregate, by: tuple[str, ...]) -> str:
    if how is Aggregate.NONE:
        return expr
    return f"{how.value} by ({_by(by)}) ({expr})" if by else f"{how.value}({expr})"


def _signal(sig: Signal, window: float, by: tuple[str, ...]) -> str:
    inner = (
        f"rate({sig.selector}[{duration(window)}])"
        if sig.counter
        else f"avg_over_time({sig.selector}[{duration(window)}])"
    )
    return aggregate(inner, sig.aggregate, by)


def _budget(rule: BurnRateRule) -> str:
    return f"{1 - rule.objective:.10g}"


def sli_error_ratio(rule: BurnRateRule, window: float) -> str:
    """The error ratio over one window, as Sloth records it."""
    w = duration(window)
    total = aggregate(f"rate({rule.total}[{w}])", Aggregate.SUM, rule.by)
    if rule.bad is not None:
        bad = aggregate(f"rate({rule.bad}[{w}])", Aggregate.SUM, rule.by)
        # A bad-events counter that does not exist yet has counted nothing (as watchtower takes it).
        return f"({bad} or 0 * {total})\n/\n({total})"
    good = aggregate(f"rate({rule.good}[{w}])", Aggregate.SUM, rule.by)
    return f"1 - (({good})\n/\n({total}))"


def sli_series(rule: BurnRateRule, window: float) -> str:
    return f'slo:sli_error:ratio_rate{duration(window)}{{slo="{rule.name}"}}'


def burn_windows(rule: BurnRateRule) -> list[float]:
    return sorted({x for w in rule.windows for x in (w.long, w.short)})


# ------------------------------------------------------------------------------------------- per rule


def value_expr(rule: RuleBase) -> str:
    """What the rule measures, as PromQL (what its dashboard panel draws against the bound)."""
    match rule:
        case ThresholdRule():
            return aggregate(selector(rule.selector), rule.aggregate, rule.by)
        case RateRule():
            how = Aggregate.MAX if rule.aggregate is Aggregate.NONE and rule.by else rule.aggregate
            return f"{aggregate(f'rate({rule.selector}[{duration(rule.window)}])', how, rule.by)} * 60"
        case GrowthRule() | TimeToBreachRule():
            return aggregate(selector(rule.selector), rule.aggregate, rule.by)
        case ThroughputFloorRule():
            return _signal(rule.output, rule.window, rule.by)
        case BurnRateRule():
            shortest = min(w.short for w in rule.windows)
            return f"{sli_series(rule, shortest)} / {_budget(rule)}"
        case ConsumerStatusRule():
            raise NotExpressible(
                "consumer_status is Burrow's sliding-window evaluation of committed offsets and lag per partition "
                "(STOP/STALL/REWIND/WARN); PromQL has no equivalent. watchtower evaluates it; "
                "watchtower_consumer_group_status shows its result"
            )
    raise NotExpressible(f"rule kind {rule.kind!r} has no Prometheus export yet")


def bound_of(rule: RuleBase) -> float | None:
    """The bound the panel of the rule draws, in the units of `value_expr` (None: no single line)."""
    match rule:
        case ThresholdRule() | RateRule():
            return rule.bound
        case TimeToBreachRule():
            return rule.threshold
        case ThroughputFloorRule():
            return rule.floor
        case BurnRateRule():
            return max(w.factor for w in rule.windows)
        case GrowthRule():
            return rule.min_value or None
    return None


def _labels(rule: RuleBase, severity: str | None = None) -> dict[str, str]:
    return {"severity": severity or rule.severity.value, "watchtower_rule": rule.name, "route": rule.route}


def _annotations(rule: RuleBase, dashboard_url: str = "") -> dict[str, str]:
    bound = rule.factor if isinstance(rule, GrowthRule) else bound_of(rule)
    limit = f" (bound {bound:.10g})" if bound is not None else ""
    out = {"summary": f"{rule.name}: {{{{ $value | humanize }}}}{limit}"}
    if rule.runbook:
        out["runbook_url"] = rule.runbook
    if dashboard_url or rule.dashboard:
        out["dashboard"] = dashboard_url or rule.dashboard
    return out


def _alert(
    rule: RuleBase, expr: str, dashboard_url: str, *, name: str | None = None, severity: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"alert": name or prom_name(rule.name), "expr": expr}
    if rule.for_:
        out["for"] = duration(rule.for_)
    if rule.keep_firing_for:
        out["keep_firing_for"] = duration(rule.keep_firing_for)
    out["labels"] = _labels(rule, severity)
    out["annotations"] = _annotations(rule, dashboard_url)
    return out


def _cmp(op: Op, bound: float) -> str:
    return f"{op.value} {bound:.10g}"


def rules_for(rule: RuleBase, dashboard_url: str = "") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(recording rules, alerting rules) for one rule; raises NotExpressible."""
    match rule:
        case ThresholdRule() | RateRule():
            return [], [_alert(rule, f"{value_expr(rule)} {_cmp(rule.op, rule.bound)}", dashboard_url)]
        case GrowthRule():
            rec = {"record": recorded(rule), "expr": value_expr(rule)}
            v, w = recorded(rule), duration(rule.window)
            expr = f"({v} / clamp_min(min_over_time({v}[{w}]), {rule.floor:.10g})) >= {rule.factor:.10g}"
            if rule.min_value:
                expr += f"\nand {v} >= {rule.min_value:.10g}"
            return [rec], [_alert(rule, expr, dashboard_url)]
        case TimeToBreachRule():
            rec = {"record": recorded(rule), "expr": value_expr(rule)}
            expr = f"predict_linear({recorded(rule)}[{duration(rule.window)}], {rule.horizon:.10g}) {_cmp(rule.op, rule.threshold)}"
            return [rec], [_alert(rule, expr, dashboard_url)]
        case ThroughputFloorRule():
            out = _signal(rule.output, rule.window, rule.by)
            inp = _signal(rule.input, rule.window, rule.by)
            on = f"on ({_by(rule.by)})"
            expr = f"({out}) < {rule.floor:.10g}\nand {on}\n({inp}) > {rule.input_min:.10g}"
            return [], [_alert(rule, expr, dashboard_url)]
        case BurnRateRule():
            recs = [
                {
                    "record": f"slo:sli_error:ratio_rate{duration(w)}",
                    "expr": sli_error_ratio(rule, w),
                    "labels": {"slo": rule.name},
                }
                for w in burn_windows(rule)
            ]
            return recs, [_burn_alert(rule, w, dashboard_url) for w in rule.windows]
    value_expr(rule)  # raises NotExpressible with the reason
    raise NotExpressible(rule.kind)


def _burn_alert(rule: BurnRateRule, w: BurnWindow, dashboard_url: str) -> dict[str, Any]:
    limit = f"({w.factor:.10g} * {_budget(rule)})"
    on = f"on ({_by(rule.by)})" if rule.by else "on ()"
    expr = (
        f"(\n  {sli_series(rule, w.long)} > {limit}\n  and {on}\n  {sli_series(rule, w.short)} > {limit}\n)"
    )
    name = f"{prom_name(rule.name)}_{duration(w.long)}_{duration(w.short)}"
    alert = _alert(rule, expr, dashboard_url, name=name, severity=w.severity.value)
    alert["annotations"]["summary"] = (
        f"{rule.name}: error budget burning over {w.factor:g}x over {duration(w.long)} and {duration(w.short)} "
        f"(objective {rule.objective:.4g})"
    )
    return alert


# ------------------------------------------------------------------------------------------ whole files


def export(ruleset: RuleSet, links: dict[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The Prometheus rule file as a dict, and one note per rule that could not be exported."""
    links = links or {}
    recording: list[dict[str, Any]] = []
    alerting: list[dict[str, Any]] = []
    notes: list[str] = []
    for rule in ruleset.rules:
        try:
            recs, alerts = rules_for(rule, links.get(rule.name, ""))
        except NotExpressible as exc:
            notes.append(f"{rule.name} ({rule.kind}): not exported: {exc}")
            continue
        recording.extend(recs)
        alerting.extend(alerts)
    groups = []
    if recording:
        groups.append({"name": RECORDING_GROUP, "rules": recording})
    groups.append({"name": ALERTING_GROUP, "rules": alerting})
    return {"groups": groups}, notes


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=200)


def prometheus_yaml(ruleset: RuleSet, links: dict[str, str] | None = None) -> str:
    data, notes = export(ruleset, links)
    head = [
        "# Generated by `watchtower rules export --format prometheus` from "
        + ", ".join(ruleset.files or ("the rule set",)),
        "# Load it with rule_files: in prometheus.yml; check it with `promtool check rules`.",
    ]
    head += [f"# {n}" for n in notes]
    return "\n".join(head) + "\n" + dump(data)


def alertmanager_config(
    ruleset: RuleSet, *, channel: str = "#alerts", webhook_file: str = "/etc/alertmanager/slack_webhook_url"
) -> dict[str, Any]:
    """An Alertmanager route tree (one child per rule-file route, grouping as the rule file says) and Slack receivers.

    The webhook URL is read from `webhook_file` (Alertmanager's `api_url_file`), so no secret is in the config.
    """
    severities = ("page", "ticket", "info")

    def slack(severity: str) -> dict[str, Any]:
        return {
            "name": f"slack-{severity}",
            "slack_configs": [
                {
                    "api_url_file": webhook_file,
                    "channel": channel,
                    "send_resolved": True,
                    "title": f"[{severity}] {{{{ .CommonLabels.watchtower_rule }}}} {{{{ .Status }}}}",
                    "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}",
                    "actions": [
                        {
                            "type": "button",
                            "text": "Runbook",
                            "url": "{{ (index .Alerts 0).Annotations.runbook_url }}",
                        },
                        {
                            "type": "button",
                            "text": "Dashboard",
                            "url": "{{ (index .Alerts 0).Annotations.dashboard }}",
                        },
                    ],
                }
            ],
        }

    def by_severity(rc: Any) -> list[dict[str, Any]]:
        return [
            {
                "receiver": f"slack-{s}",
                "matchers": [f'severity="{s}"'],
                # watchtower's pseudo-label `rule` is the alert label watchtower_rule here.
                "group_by": list(
                    dict.fromkeys(
                        ["watchtower_rule", *("watchtower_rule" if g == "rule" else g for g in rc.group_by)]
                    )
                ),
                "group_wait": duration(rc.group_wait),
                "group_interval": duration(max(rc.group_interval, 1)),
                "repeat_interval": duration(rc.repeat_interval),
            }
            for s in severities
        ]

    routes = ruleset.routes
    default = routes.get("default")
    children = [
        {"matchers": [f'route="{name}"'], "routes": by_severity(rc)}
        for name, rc in sorted(routes.items())
        if name != "default"
    ]
    children += by_severity(default) if default is not None else []
    return {
        "route": {"receiver": "slack-ticket", "group_by": ["watchtower_rule"], "routes": children},
        "receivers": [slack(s) for s in severities],
    }


def alertmanager_yaml(ruleset: RuleSet, **kwargs: Any) -> str:
    head = "# Generated by `watchtower rules export --format alertmanager`; check it with `amtool check-config`.\n"
    return head + dump(alertmanager_config(ruleset, **kwargs))
