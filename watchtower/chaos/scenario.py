"""Chaos scenario files (`chaos/scenarios/*.yaml`): the models, and `check_scenarios` with file:line errors.

The shape is Chaos Toolkit's experiment, with watchtower's verdicts in `expect`:

    name: late-beyond-watermark
    purpose: Events older than the watermark land in `late`, page late-share-high, which then resolves.
    steady_state:                       # checked before the method and after it (time to recover)
      probes:
        - {name: spark lag, metric: 'watchtower_consumer_lag_seconds{group="watchtower-spark"}', max: 30}
      recover_within: 60s
    method:                             # faults, each at an offset from the method start
      - {fault: late_events, at: 0s, with: {count: 200, by: 2h}}
      - {fault: pause_process, at: 5s, duration: 10s, with: {target: broker}}
    rollbacks:                          # extra undo steps; every fault is undone anyway
      - {fault: ..., with: {...}}
    expect:
      records: conserved                # every injected record where the contract puts it (read back)
      alerts:
        - {rule: late-share-high, within: 30s, resolve_within: 90s}   # pages: 1 to forbid a second incident
      tolerate: [consumer-lag-seconds-high]   # may page without being a false positive

Validation only: nothing here touches a process or the network.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from watchtower.config.yaml_source import ConfigError, compose_with_lines, line_of
from watchtower.core.units import Duration
from watchtower.rules.selector import parse_selector


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Probe(_Model):
    """A steady-state probe on the daemon's latest readings: `aggregate` of the series `metric` selects,
    within [min, max]. No series at all counts as holding only when `missing_ok`."""

    name: str
    metric: str
    aggregate: Literal["max", "min", "sum", "avg"] = "max"
    min: float | None = None
    max: float | None = None
    missing_ok: bool = False

    @field_validator("metric")
    @classmethod
    def _selector(cls, v: str) -> str:
        parse_selector(v)
        return v

    @model_validator(mode="after")
    def _bounded(self) -> Probe:
        if self.min is None and self.max is None:
            raise ValueError("give the tolerance: max:, min: or both (e.g. max: 30)")
        return self


class SteadyState(_Model):
    probes: tuple[Probe, ...] = ()
    recover_within: Duration = Field(default=60.0, gt=0)


class Step(_Model):
    """One fault of the method: started `at` after the method starts; a fault with a `duration` is undone
    that much later; `every` repeats it (each time for `duration`) until `until`."""

    fault: str
    at: Duration = Field(default=0.0, ge=0)
    duration: Duration | None = Field(default=None, gt=0)
    every: Duration | None = Field(default=None, gt=0)
    until: Duration | None = Field(default=None, gt=0)
    params: dict[str, Any] = Field(default_factory=dict, alias="with")

    @model_validator(mode="after")
    def _repeat(self) -> Step:
        if self.every is not None and self.until is None:
            raise ValueError("every: needs until: (when the repetitions stop, after the method start)")
        return self


class AlertExpectation(_Model):
    rule: str
    within: Duration = Field(gt=0, description="seconds from the fault start to the first page")
    resolve_within: Duration | None = Field(default=None, gt=0, description="seconds from the method end")
    pages: int | None = Field(
        default=None,
        ge=1,
        description="FIRING pages (and RESOLVED ones, with resolve_within) exactly this many times in the run",
    )


class Expect(_Model):
    records: Literal["conserved", "unchecked"] = "conserved"
    alerts: tuple[AlertExpectation, ...] = ()
    tolerate: tuple[str, ...] = ()  # rules that may page without being a false positive


class Scenario(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    purpose: str = Field(min_length=10)
    steady_state: SteadyState = Field(default_factory=SteadyState)
    method: tuple[Step, ...] = Field(min_length=1)
    rollbacks: tuple[Step, ...] = ()
    expect: Expect = Field(default_factory=Expect)
    source: str = ""  # file:line, set by the loader

    @property
    def method_seconds(self) -> float:
        """When the last step of the method is undone, from the method start."""
        end = 0.0
        for s in self.method:
            last = s.until if s.every is not None else s.at
            end = max(end, (last or s.at) + (s.duration or 0.0))
        return end


def scenario_files(path: Path) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml"))
    return [p]


def _describe(err: dict[str, Any], at: Any, model: type[BaseModel]) -> str:
    loc = tuple(str(p) for p in err["loc"])
    dotted = ".".join(loc)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        parent: Any = model
        for part in loc[:-1]:
            field = (
                parent.model_fields.get(part)
                if isinstance(parent, type) and issubclass(parent, BaseModel)
                else None
            )
            ann = getattr(field, "annotation", None)
            args = getattr(ann, "__args__", ()) or ()
            parent = next(
                (a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), parent
            )
        names = (
            sorted((f.alias or n) for n, f in parent.model_fields.items() if n != "source")
            if isinstance(parent, type)
            else []
        )
        close = difflib.get_close_matches(loc[-1], names, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        msg = f"unknown field; {hint}allowed here: {', '.join(names)}"
    elif err["type"] == "missing":
        msg = "required; add it"
    return f"{at(loc)}: {dotted}: {msg}"


def check_scenario_file(
    f: Path, known_faults: dict[str, type[BaseModel]], known_rules: set[str] | None
) -> tuple[Scenario | None, list[str]]:
    """One file -> (the scenario, or None, and every problem as `file:line: field: what; fix`)."""
    source = str(f)
    try:
        data, lines = compose_with_lines(f.read_text(), source)
    except ConfigError as exc:
        return None, list(exc.problems)
    except OSError as exc:
        return None, [f"{source}: cannot read ({exc.strerror}); check the path"]

    def at(loc: tuple[str, ...]) -> str:
        line = line_of(loc, lines)
        return f"{source}:{line}" if line else source

    if not isinstance(data, dict):
        return None, [
            f"{source}:1: a scenario is a mapping with name:, purpose:, method: (and steady_state:, rollbacks:, expect:)"
        ]
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as exc:
        return None, [_describe(e, at, Scenario) for e in exc.errors()]
    problems: list[str] = []
    for section in ("method", "rollbacks"):
        for i, step in enumerate(getattr(sc, section)):
            loc = (section, str(i), "fault")
            params = known_faults.get(step.fault)
            if params is None:
                close = difflib.get_close_matches(step.fault, list(known_faults), n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                problems.append(
                    f"{at(loc)}: {section}.{i}.fault: unknown fault {step.fault!r}; {hint}use one of: {', '.join(sorted(known_faults))}"
                )
                continue
            try:
                params.model_validate(step.params)
            except ValidationError as exc:
                for e in exc.errors():
                    e = {**e, "loc": (section, str(i), "with", *e["loc"])}
                    problems.append(
                        _describe(e, at, Scenario)
                        if e["type"] != "extra_forbidden"
                        else f"{at(tuple(str(p) for p in e['loc']))}: {'.'.join(str(p) for p in e['loc'])}: unknown field; "
                        f"{step.fault} takes: {', '.join(sorted(params.model_fields))}"
                    )
    if known_rules is not None:
        for i, a in enumerate(sc.expect.alerts):
            if a.rule not in known_rules:
                close = difflib.get_close_matches(a.rule, sorted(known_rules), n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                problems.append(
                    f"{at(('expect', 'alerts', str(i), 'rule'))}: expect.alerts.{i}.rule: no rule {a.rule!r} in the chaos rules; {hint}"
                )
    return sc.model_copy(update={"source": at(("name",))}), problems


def check_scenarios(
    path: Path, known_faults: dict[str, type[BaseModel]], known_rules: set[str] | None = None
) -> tuple[list[Scenario], list[str]]:
    p = Path(path)
    if not p.exists():
        return [], [
            f"{p}: no such file or directory; pass a scenario file or a directory such as chaos/scenarios"
        ]
    files = scenario_files(p)
    if not files:
        return [], [f"{p}: no *.yaml scenario files here; add one (see docs/chaos.md)"]
    out: list[Scenario] = []
    problems: list[str] = []
    names: dict[str, str] = {}
    for f in files:
        sc, found = check_scenario_file(f, known_faults, known_rules)
        problems += found
        if sc is None or found:
            continue
        if sc.name in names:
            problems.append(
                f"{sc.source}: name: {sc.name!r} is already used by {names[sc.name]}; scenario names must be unique"
            )
            continue
        names[sc.name] = sc.source
        out.append(sc)
    return out, problems
