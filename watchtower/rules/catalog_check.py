"""Rules that can never fire are errors: every selector's metric and label names checked against the catalog.

`selector: watchtower_consumer_lag_mesages{...}` (a typo) would match nothing, forever, and the rule would
never fire: the silent failure watchtower exists to prevent. `problems(rule)` names each unknown metric or
label with the closest known one (difflib), as (field path, message) pairs for the rule loader.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping

from pydantic import BaseModel

from watchtower.rules.base import RuleBase
from watchtower.rules.selector import Selector

# Metrics whose label set is open: the alert state carries each alert's own labels.
OPEN_LABELS = frozenset({"watchtower_alert_state"})


def catalog() -> dict[str, tuple[str, ...]]:
    """metric name -> label names, from every source of the metric catalog (the catalog reads the collectors registry; imported late to keep `rules check` light)."""
    from watchtower.exposition.catalog import all_specs

    out: dict[str, set[str]] = {}
    for _, spec in all_specs():
        out.setdefault(spec.name, set()).update(spec.label_names)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def selectors(model: BaseModel, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Selector]]:
    """Every Selector in a rule's fields, with its field path (nested models such as throughput signals too)."""
    for name, value in model:
        field = type(model).model_fields[name]
        key = field.alias or name
        if isinstance(value, Selector):
            yield (*path, key), value
        elif isinstance(value, BaseModel):
            yield from selectors(value, (*path, key))


def _closest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"did you mean {close[0]}?" if close else "no close match"


def problems(rule: RuleBase, known: Mapping[str, tuple[str, ...]]) -> list[tuple[tuple[str, ...], str]]:
    out: list[tuple[tuple[str, ...], str]] = []
    metrics = sorted(known)
    label_sets: list[set[str]] = []
    for path, sel in selectors(rule):
        dotted = ".".join(path)
        if sel.metric not in known:
            out.append(
                (
                    path,
                    f"{dotted}: metric {sel.metric!r} is not in the catalog, so this rule can never fire; "
                    f"{_closest(sel.metric, metrics)} (docs/metrics.md lists every metric)",
                )
            )
            continue
        if sel.metric in OPEN_LABELS:
            label_sets.append(set())
            continue
        labels = list(known[sel.metric])
        label_sets.append(set(labels))
        for m in sel.matchers:
            if m.label not in labels:
                out.append(
                    (
                        path,
                        f"{dotted}: {sel.metric} has no label {m.label!r}; {_closest(m.label, labels)} "
                        f"(its labels: {', '.join(labels) or 'none'})",
                    )
                )
    by = getattr(rule, "by", ()) or ()
    if label_sets and all(label_sets):
        union = set().union(*label_sets)
        for name in by:
            if name not in union:
                out.append(
                    (
                        ("by",),
                        f"by: no selected metric has the label {name!r}; {_closest(name, sorted(union))} "
                        f"(labels: {', '.join(sorted(union))})",
                    )
                )
    return out
