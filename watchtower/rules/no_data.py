"""The no-data alert: a rule whose selectors matched no series for longer than its `stale_after`.

A rule that reads nothing can never fire, which is the silent failure watchtower exists to prevent (what
Prometheus users write `absent()` alerts for). Pure, like the rules: from the history and `now`:

    the history reaches back at least `stale_after` (the daemon has watched long enough), and
    no reading within the last `stale_after` has a sample matching any of the rule's selectors
    -> one breaching result for the rule `<name>:no-data` (no labels), severity ticket, on the rule's route

`stale_after` is the rule's own when it has one (threshold), else DEFAULT_STALE_AFTER. A rule with
`alert_on_no_data: false` (metrics that exist only in some deployments) gets none.
"""

from __future__ import annotations

from collections.abc import Sequence

from watchtower.alerting.lifecycle import RuleTiming
from watchtower.alerting.model import RuleResult, Severity
from watchtower.core.types import Reading
from watchtower.rules.base import RuleBase, fmt_duration
from watchtower.rules.catalog_check import selectors
from watchtower.rules.series import indexed
from watchtower.rules.series import window as series_window

SUFFIX = ":no-data"
DEFAULT_STALE_AFTER = 300.0


def name_of(rule: RuleBase) -> str:
    return rule.name + SUFFIX


def stale_after(rule: RuleBase) -> float:
    return float(getattr(rule, "stale_after", DEFAULT_STALE_AFTER))


def timing(rule: RuleBase) -> RuleTiming:
    return RuleTiming(for_=0.0, keep_firing_for=0.0, route=rule.route)


def evaluate(rules: Sequence[RuleBase], history: Sequence[Reading], now: float) -> list[RuleResult]:
    """One result per rule with selectors: breaching when it has matched nothing for `stale_after`."""
    if not len(history):
        return []
    history = indexed(history)
    oldest = min(r.at for r in history)
    out = []
    for rule in rules:
        sels = [s for _, s in selectors(rule)]
        if not sels or not rule.alert_on_no_data:
            continue
        window = stale_after(rule)
        watched_long_enough = oldest <= now - window
        silent = watched_long_enough and all(
            series_window(history, s, now, since=now - window).empty for s in sels
        )
        out.append(
            RuleResult(
                rule=name_of(rule),
                labels=(),
                breaching=silent,
                value=None,
                bound=window,
                severity=Severity.TICKET,
                summary=f"{rule.name}: its selectors ({', '.join(map(str, sels))}) matched no series for "
                f"{fmt_duration(window)}; the rule cannot fire. Check the selector and the collector.",
                runbook=rule.runbook,
                dashboard=rule.dashboard,
            )
        )
    return out
