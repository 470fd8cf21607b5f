"""Metric selectors: `metric_name{label="v", other=~"re"}` picks series out of a history of Readings."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

from watchtower.alerting.matchers import SYNTAX_HINT, Matcher, matches_all, parse_matchers
from watchtower.core.types import Labels, Reading

_SELECTOR = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*$", re.S)


@dataclass(frozen=True, slots=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...] = ()

    def matches(self, metric: str, labels: Labels) -> bool:
        return metric == self.metric and matches_all(self.matchers, dict(labels))

    def samples(self, reading: Reading) -> Iterable[tuple[Labels, float]]:
        for s in reading.samples:
            if s.metric == self.metric and matches_all(self.matchers, dict(s.labels)):
                yield s.labels, s.value

    def __str__(self) -> str:
        inner = ", ".join(str(m) for m in self.matchers)
        return f"{self.metric}{{{inner}}}" if inner else self.metric


def parse_selector(value: Any) -> Selector:
    """Accepts `metric{...}` or a mapping `{metric: name, match: {label: value}, match_re: {label: regex}}`."""
    if isinstance(value, Selector):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - {"metric", "match", "match_re"}
        if unknown or "metric" not in value:
            raise ValueError(
                "a selector mapping takes metric, match (label: value) and match_re (label: regex)"
            )
        inner = [f'{k}="{v}"' for k, v in (value.get("match") or {}).items()]
        inner += [f'{k}=~"{v}"' for k, v in (value.get("match_re") or {}).items()]
        value = f"{value['metric']}{{{', '.join(inner)}}}"
    if not isinstance(value, str):
        raise ValueError('expected a selector such as watchtower_consumer_lag_messages{group="orders"}')
    m = _SELECTOR.match(value)
    if not m:
        raise ValueError(
            f'{value!r} is not a selector; write it as metric_name{{label="value"}} ({SYNTAX_HINT})'
        )
    return Selector(m.group(1), parse_matchers(m.group(2) or ""))


SelectorField = Annotated[Selector, BeforeValidator(parse_selector), PlainSerializer(str)]
