"""Silences: label matchers with a time window. Pure; the store keeps them, the lifecycle applies them.

Matchers are the rules' (`alerting.matchers`): `name=value`, `name!=value`, `name=~regex`, `name!~regex`,
regexes matching the whole value. On the command line values may be bare or quoted. The name `rule`
matches the alert's rule; any other name one of its labels, and a missing label reads as "".
"""

from __future__ import annotations

import re
import shlex
import uuid
from dataclasses import dataclass, field
from typing import Any

from watchtower.alerting.matchers import Matcher, MatchOp
from watchtower.core.types import Labels

# One CLI word: name, operator, value; the value may be bare or quoted.
_WORD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


def parse_matcher(text: str) -> Matcher:
    m = _WORD.match(text)
    if not m:
        raise ValueError(
            f"{text!r} is not a matcher: write name=value, name!=value, name=~regex or name!~regex"
        )
    value = m.group(3)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return Matcher(m.group(1), MatchOp(m.group(2)), value)  # raises ValueError on a bad regex


def parse_matchers(args: list[str] | str) -> tuple[Matcher, ...]:
    """Matchers from CLI words or one string such as `rule=lag_high group=~"orders.*"`."""
    words = shlex.split(args) if isinstance(args, str) else list(args)
    if not words:
        raise ValueError("a silence needs at least one matcher, e.g. rule=lag_high")
    return tuple(parse_matcher(w) for w in words)


def _subject(rule: str, labels: Labels) -> dict[str, str]:
    return {**dict(labels), "rule": rule}


@dataclass(frozen=True, slots=True)
class Silence:
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    comment: str = ""
    created_by: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, rule: str, labels: Labels, now: float) -> bool:
        subject = _subject(rule, labels)
        return self.active(now) and all(m.matches(subject) for m in self.matchers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": [m.to_dict() for m in self.matchers],
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "comment": self.comment,
            "created_by": self.created_by,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Silence:
        return cls(
            matchers=tuple(Matcher.from_dict(m) for m in d["matchers"]),
            starts_at=float(d["starts_at"]),
            ends_at=float(d["ends_at"]),
            comment=d.get("comment", ""),
            created_by=d.get("created_by", ""),
            id=d["id"],
        )


def silenced(
    silences: list[Silence] | tuple[Silence, ...], rule: str, labels: Labels, now: float
) -> Silence | None:
    """The first active silence that matches, if any."""
    return next((s for s in silences if s.matches(rule, labels, now)), None)
