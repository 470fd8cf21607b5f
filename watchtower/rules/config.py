"""Rule files: YAML in `alerts/`, validated into rule objects, with every problem reported by file and line.

    routes:                      # optional; `default` always exists
      oncall: {group_by: [group], group_wait: 30s, group_interval: 5m, repeat_interval: 4h}
    rules:
      - name: lag-messages-high
        kind: threshold          # one of watchtower.rules.kinds.KINDS
        selector: watchtower_consumer_lag_messages{group="orders-agg"}
        aggregate: max
        op: ">"
        bound: 10000
        for: 1m
        severity: page
        route: oncall

    grafana:                     # optional: each rule without `dashboard:` links to its panel there
      url: http://localhost:3000

Every selector's metric and label names are checked against the metric catalog (a typo is an error naming
the closest name), and each rule gets a `<name>:no-data` alert when its selectors match nothing for
`stale_after` (watchtower.rules.no_data).

`load_rules(path)` takes a file or a directory (every *.yaml / *.yml in it, not recursive) and raises
ConfigError listing every problem; `check_rules(path)` returns the problems instead.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from watchtower.alerting.lifecycle import LifecycleConfig, RoutePolicy, RuleTiming
from watchtower.alerting.model import RuleResult
from watchtower.config.yaml_source import ConfigError, compose_with_lines, line_of
from watchtower.core.dashboard_links import rule_link
from watchtower.core.types import Reading
from watchtower.core.units import Duration
from watchtower.rules import catalog_check, no_data
from watchtower.rules.base import RuleBase
from watchtower.rules.kinds import KINDS
from watchtower.rules.series import indexed

__all__ = ["ConfigError", "RouteConfig", "RuleSet", "check_rules", "evaluate_all", "load_rules"]


class RouteConfig(BaseModel):
    """How alerts on one route are grouped into notifications (Alertmanager's route settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group_by: tuple[str, ...] = ()
    group_wait: Duration = Field(30.0, ge=0)
    group_interval: Duration = Field(300.0, ge=0)
    repeat_interval: Duration = Field(4 * 3600.0, gt=0)


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[RuleBase, ...] = ()
    routes: Mapping[str, RouteConfig] = field(default_factory=lambda: {"default": RouteConfig()})
    files: tuple[str, ...] = ()

    def lifecycle_config(self) -> LifecycleConfig:
        return LifecycleConfig(
            rules={
                **{no_data.name_of(r): no_data.timing(r) for r in self.rules},
                **{
                    r.name: RuleTiming(for_=r.for_, keep_firing_for=r.keep_firing_for, route=r.route)
                    for r in self.rules
                },
            },
            routes={
                name: RoutePolicy(tuple(rc.group_by), rc.group_wait, rc.group_interval, rc.repeat_interval)
                for name, rc in self.routes.items()
            },
        )

    def summary(self) -> str:
        kinds = Counter(r.kind for r in self.rules)
        by_kind = ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items()))
        return f"{len(self.rules)} rules in {len(self.files)} file(s) ({by_kind}); routes: {', '.join(sorted(self.routes))}"


def evaluate_all(
    rules: Sequence[RuleBase], history: Sequence[Reading], now: float
) -> tuple[list[RuleResult], dict[str, str]]:
    """Evaluate every rule; a rule that raises is reported (name -> error) and left out, the others go on.

    Pass the failed names as `skipped_rules` to the lifecycle step so their alerts keep their state.
    Each rule's `<name>:no-data` result comes after the rules' own (watchtower.rules.no_data).
    """
    results: list[RuleResult] = []
    failed: dict[str, str] = {}
    history = indexed(history)  # a plain list is indexed once for all rules, not once per rule
    for rule in rules:
        try:
            results.extend(rule.evaluate(history, now))
        except Exception as exc:  # a buggy rule must not stop the others
            failed[rule.name] = f"{type(exc).__name__}: {exc}"
    results.extend(no_data.evaluate(rules, history, now))
    return results, failed


def rule_files(path: str | Path) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.iterdir() if f.is_file() and f.suffix in (".yaml", ".yml"))
    return [p]


def load_rules(path: str | Path) -> RuleSet:
    ruleset, problems = check_rules(path)
    if problems:
        raise ConfigError(problems)
    return ruleset


def check_rules(path: str | Path) -> tuple[RuleSet, list[str]]:
    """Validate a rule file or directory; return what is valid and every problem found (file:line: ...)."""
    p = Path(path)
    if not p.exists():
        return RuleSet(), [f"{p}: no such file or directory; pass a rule file or a directory of *.yaml files"]
    files = rule_files(p)
    if not files:
        return RuleSet(), [
            f"{p}: no *.yaml or *.yml files in this directory; add a rule file such as alerts/default.yaml"
        ]
    problems: list[str] = []
    rules: list[RuleBase] = []
    routes: dict[str, RouteConfig] = {"default": RouteConfig()}
    defined: dict[str, str] = {}  # rule or route name -> where it was defined
    route_refs: list[tuple[str, str]] = []  # (route name, where it is used)
    for f in files:
        start = len(problems)
        _check_file(f, rules, routes, defined, route_refs, problems)
        problems[start:] = sorted(problems[start:], key=lambda p, src=str(f): _line_in(p, src))
    for route, where in route_refs:
        if route not in routes:
            known = ", ".join(sorted(routes))
            problems.append(
                f"{where}: route {route!r} is not defined; define it under routes: or use one of: {known}"
            )
    return RuleSet(tuple(rules), routes, tuple(str(f) for f in files)), problems


def _line_in(problem: str, source: str) -> int:
    rest = problem.removeprefix(source + ":")
    digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
    return int(digits) if digits else 0


def _check_file(
    f: Path,
    rules: list[RuleBase],
    routes: dict[str, RouteConfig],
    defined: dict[str, str],
    route_refs: list[tuple[str, str]],
    problems: list[str],
) -> None:
    source = str(f)
    try:
        data, lines = compose_with_lines(f.read_text(), source)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return
    except OSError as exc:
        problems.append(f"{source}: cannot read ({exc.strerror}); check the path and permissions")
        return

    def at(loc: tuple[str, ...]) -> str:
        line = line_of(loc, lines)
        return f"{source}:{line}" if line else source

    if not data:
        problems.append(f"{source}:1: the file is empty; add a rules: list")
        return
    if not isinstance(data, dict):
        problems.append(f"{source}:1: a rule file is a mapping with rules: (a list) and optionally routes:")
        return
    for key in data:
        if key not in ("rules", "routes", "grafana"):
            problems.append(
                f"{at((str(key),))}: {key}: unknown section; a rule file has only rules:, routes: and grafana:"
            )
    grafana_url = _grafana_url(data.get("grafana"), at, problems)

    raw_routes = data.get("routes") or {}
    if not isinstance(raw_routes, dict):
        problems.append(f"{at(('routes',))}: routes: must be a mapping of route name to settings")
        raw_routes = {}
    for name, body in raw_routes.items():
        loc = ("routes", str(name))
        if name in defined and name != "default":
            problems.append(
                f"{at(loc)}: routes.{name}: route already defined at {defined[name]}; route names must be unique"
            )
            continue
        try:
            routes[str(name)] = RouteConfig.model_validate(body or {})
            defined[str(name)] = at(loc)
        except ValidationError as exc:
            problems.extend(_describe(e, loc, at, RouteConfig) for e in exc.errors())

    raw_rules = data.get("rules")
    if raw_rules is None:
        problems.append(f"{source}:1: no rules: list; add rules: with at least one rule (name, kind, ...)")
        return
    if not isinstance(raw_rules, list):
        problems.append(
            f"{at(('rules',))}: rules: must be a list of rules (each item starts with '- name: ...')"
        )
        return
    known = catalog_check.catalog()
    for i, raw in enumerate(raw_rules):
        rule = _check_rule(i, raw, at, problems)
        if rule is None:
            continue
        for path, msg in catalog_check.problems(rule, known):
            problems.append(f"{at(('rules', str(i), *path))}: rules.{i}.{msg}")
        if grafana_url and not rule.dashboard:
            rule = rule.model_copy(update={"dashboard": rule_link(grafana_url, rule.name)})
        loc = ("rules", str(i), "name")
        if rule.name in defined:
            problems.append(
                f"{at(loc)}: rules.{i}.name: {rule.name!r} is already defined at {defined[rule.name]}; rule names must be unique"
            )
            continue
        defined[rule.name] = at(loc)
        route_refs.append((rule.route, at(("rules", str(i), "route"))))
        rules.append(rule)


def _grafana_url(section: Any, at: Any, problems: list[str]) -> str:
    if section is None:
        return ""
    url = section.get("url") if isinstance(section, dict) else None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or set(section) != {"url"}:
        problems.append(
            f"{at(('grafana',))}: grafana: takes only url: (http://... or https://..., the Grafana the dashboards live in)"
        )
        return ""
    return url


def _check_rule(i: int, raw: Any, at: Any, problems: list[str]) -> RuleBase | None:
    base = ("rules", str(i))
    if not isinstance(raw, dict):
        problems.append(f"{at(base)}: rules.{i}: each rule is a mapping (name:, kind:, ...)")
        return None
    kinds = ", ".join(sorted(KINDS))
    kind = raw.get("kind")
    if kind is None:
        problems.append(f"{at(base)}: rules.{i}.kind: required; add kind: with one of: {kinds}")
        return None
    cls = KINDS.get(str(kind))
    if cls is None:
        close = difflib.get_close_matches(str(kind), list(KINDS), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        problems.append(
            f"{at((*base, 'kind'))}: rules.{i}.kind: unknown kind {kind!r}; {hint}use one of: {kinds}"
        )
        return None
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_describe(e, base, at, cls) for e in exc.errors())
        return None


def _describe(err: Mapping[str, Any], base: tuple[str, ...], at: Any, model: type[BaseModel]) -> str:
    loc = (*base, *(str(p) for p in err["loc"]))
    dotted = ".".join(loc)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
        names = sorted((f.alias or n) for n, f in model.model_fields.items())
        close = difflib.get_close_matches(str(err["loc"][0]), names, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        msg = f"unknown field; {hint}fields of this kind: {', '.join(names)}"
    elif err["type"] == "extra_forbidden":
        msg = "unknown field; check the spelling or remove it"
    elif err["type"] == "missing":
        msg = "required; add it"
    return f"{at(loc)}: {dotted}: {msg}"
