"""Label matchers, as in PromQL and Alertmanager: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`.

Used by metric selectors in rules and by silences. Regexes are anchored (full match), as in Prometheus.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache


class MatchOp(str, Enum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@dataclass(frozen=True, slots=True)
class Matcher:
    label: str
    op: MatchOp
    value: str

    def __post_init__(self) -> None:
        if self.op in (MatchOp.RE, MatchOp.NRE):
            try:
                _compiled(self.value)
            except re.error as exc:
                raise ValueError(
                    f"{self.label}{self.op.value}{self.value!r}: not a valid regex ({exc})"
                ) from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        """A missing label counts as the empty string, as in Prometheus."""
        actual = labels.get(self.label, "")
        if self.op is MatchOp.EQ:
            return actual == self.value
        if self.op is MatchOp.NE:
            return actual != self.value
        hit = _compiled(self.value).fullmatch(actual) is not None
        return hit if self.op is MatchOp.RE else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.label}{self.op.value}"{escaped}"'

    def to_dict(self) -> dict[str, str]:
        return {"label": self.label, "op": self.op.value, "value": self.value}

    @classmethod
    def from_dict(cls, d: Mapping[str, str]) -> Matcher:
        return cls(d["label"], MatchOp(d["op"]), d["value"])


def matches_all(matchers: tuple[Matcher, ...], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_MATCHER = re.compile(rf'\s*({_NAME})\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
SYNTAX_HINT = 'write matchers as {label="value", other=~"regex", third!="x"} with double-quoted values'


def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """Parse the inside of `{...}`: comma-separated matchers. Raises ValueError with the fix."""
    out: list[Matcher] = []
    pos, text = 0, text.strip()
    while pos < len(text):
        m = _MATCHER.match(text, pos)
        if not m:
            raise ValueError(f"cannot read label matcher at {text[pos:]!r}; {SYNTAX_HINT}")
        value = re.sub(r"\\(.)", r"\1", m.group(3))
        out.append(Matcher(m.group(1), MatchOp(m.group(2)), value))
        pos = m.end()
    return tuple(out)
