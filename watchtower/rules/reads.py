"""Which metrics a rule reads, from its selectors: what reading-driven evaluation keys on. Pure.

A rule kind needs no code for this: every `Selector` anywhere in its config (a field, a nested model such
as throughput's signals, a list or a mapping) names a metric it reads. A rule with no selector at all reads
"everything" (`None`), so it is evaluated on every reading rather than never.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel

from watchtower.rules.selector import Selector


def _selectors(value: object) -> Iterable[Selector]:
    if isinstance(value, Selector):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _selectors(getattr(value, name))
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _selectors(v)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from _selectors(v)


def metrics_read(rule: BaseModel) -> frozenset[str] | None:
    """The metric names the rule's selectors pick; None when it has no selector (it reads anything)."""
    names = frozenset(s.metric for s in _selectors(rule))
    return names or None


def affected_rules(reads: Sequence[frozenset[str] | None], fresh_metrics: frozenset[str]) -> list[int]:
    """Indexes of the rules that read any of `fresh_metrics` (`reads[i]` is `metrics_read` of rule i)."""
    return [i for i, r in enumerate(reads) if r is None or not r.isdisjoint(fresh_metrics)]
