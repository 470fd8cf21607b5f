"""The `daemon.collectors.kafka_lag:` section: which groups are watched and how lag in seconds is measured."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from watchtower.collectors.base import CollectorSection
from watchtower.collectors.interval_policy import IntervalPolicyConfig
from watchtower.core.units import Duration


def _compile_all(patterns: list[str], field: str) -> list[str]:
    for p in patterns:
        try:
            re.compile(p)
        except re.error as exc:
            raise ValueError(f"{field}: {p!r} is not a valid regular expression ({exc})") from None
    return patterns


class KafkaLagConfig(CollectorSection):
    """Consumer-group lag in messages and seconds, rates, drain time and group status."""

    # A group is watched when it matches one `groups_allow` regex (fullmatch) and no `groups_deny` regex.
    groups_allow: list[str] = Field(default_factory=lambda: [".*"])
    groups_deny: list[str] = Field(default_factory=list)
    topics_deny: list[str] = Field(default_factory=lambda: ["__.*"])
    # A group with no members (state EMPTY or DEAD) keeps being reported this long, then its series go.
    inactive_group_retention: Duration = Field(default=600.0, ge=0)
    # Lag > 0 and the committed offset unchanged this long: the partition is stuck.
    stall_after: Duration = Field(default=60.0, gt=0)
    # Lag 0 and no new offsets this long: the topic is idle (not a problem, but worth telling apart).
    idle_after: Duration = Field(default=60.0, gt=0)
    # Rates are offset deltas over this window (at least two cycles), which smooths bursts.
    rate_window: Duration = Field(default=60.0, gt=0)
    # How lag in seconds is measured: `timestamp` reads the record at the committed offset, `interpolation`
    # uses the (offset, wall time) table, `auto` reads timestamps until more than
    # `timestamp_max_partitions` lagging partitions need one in a cycle, then interpolates.
    lag_seconds_method: Literal["auto", "timestamp", "interpolation"] = "auto"
    timestamp_max_partitions: int = Field(default=2000, ge=0)
    # Records are read on the probe's own thread. A cycle waits this long at most for the timestamps it
    # asked for; one not read by then is interpolated for that cycle and read from the record for the
    # next. 0: lag in messages never waits for a timestamp (the first cycle of a new offset interpolates).
    timestamp_wait: Duration = Field(default=0.0, ge=0)
    # ...except for an offset interpolation cannot place (older than anything the collector has seen: a
    # group just seen, a daemon just started): its age is unknown without the record, and an unknown age
    # is never reported as 0, so the cycle waits this long at most for that record (then: no sample).
    first_timestamp_wait: Duration = Field(default=1.0, ge=0)
    offset_table_size: int = Field(
        default=128, ge=4, description="(offset, wall time) points kept per partition"
    )
    probe_group_id: str = "watchtower-lag-probe"
    # Partitions per ListOffsets request; the requests of one cycle are all in flight together.
    list_offsets_batch: int = Field(default=500, ge=1)
    # Groups seen before are asked for the partitions of the topics they had offsets in (cheap, chunked);
    # this often they are asked for everything, which is how a group starting on a new topic is found.
    group_topics_refresh: Duration = Field(default=60.0, ge=0)
    # Off: a cycle every `interval`. On: the interval follows the cycle's cost (collectors/interval_policy.py).
    interval_policy: IntervalPolicyConfig = IntervalPolicyConfig()

    @field_validator("groups_allow", "groups_deny", "topics_deny")
    @classmethod
    def _valid_regexes(cls, v: list[str], info: ValidationInfo) -> list[str]:
        return _compile_all(v, info.field_name)
