"""Configuration of `watchtower run`: the HTTP endpoint, the history, tracing and the collectors.

Lives apart from models.py so the daemon's sections can change without touching the shared config; the
integrator hangs `DaemonConfig` off `WatchtowerConfig.daemon`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from watchtower.collectors.pipeline_outcomes import PipelineOutcomesConfig
from watchtower.core.units import Duration


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpConfig(_Model):
    """The one HTTP server: /metrics, /healthz, /api/v1/status. Loopback unless you say otherwise."""

    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535, description="0 picks a free port")


class CollectorSection(_Model):
    enabled: bool = True
    interval: Duration = Field(default=10.0, gt=0)
    timeout: Duration = Field(default=5.0, gt=0, description="budget for each network call of one cycle")


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
    offset_table_size: int = Field(
        default=128, ge=4, description="(offset, wall time) points kept per partition"
    )
    probe_group_id: str = "watchtower-lag-probe"
    # Partitions per ListOffsets request; the requests of one cycle are all in flight together.
    list_offsets_batch: int = Field(default=500, ge=1)
    # Groups seen before are asked for the partitions of the topics they had offsets in (cheap, chunked);
    # this often they are asked for everything, which is how a group starting on a new topic is found.
    group_topics_refresh: Duration = Field(default=60.0, ge=0)

    @field_validator("groups_allow", "groups_deny", "topics_deny")
    @classmethod
    def _valid_regexes(cls, v: list[str], info: ValidationInfo) -> list[str]:
        return _compile_all(v, info.field_name)


class E2eLatencyConfig(CollectorSection):
    """End-to-end latency from the pipeline's `watchtower:e2e` stream (one entry per micro-batch)."""

    stream: str = "watchtower:e2e"
    # Percentiles are over the batches whose results became visible within this window.
    window: Duration = Field(default=300.0, gt=0)
    # An event slower than this counts in watchtower_e2e_events_slow_total (the SLO's bad events).
    slo_threshold: Duration = Field(default=5.0, gt=0)
    read_count: int = Field(default=1000, ge=1, description="stream entries per XREAD")


class CanaryConfig(CollectorSection):
    """Marked canary events written into the pipeline topic; their visibility in Redis is polled.

    Off by default: it writes into the pipeline's input topic. `interval` is how often a round is sent.
    """

    enabled: bool = False
    topic: str | None = Field(default=None, description="default: pipeline.topic")
    # every_partition: one canary per partition per round; round_robin: one per round, next partition.
    mode: Literal["every_partition", "round_robin"] = "every_partition"
    # A canary not visible in Redis this long after it was sent counts as lost.
    lost_after: Duration = Field(default=60.0, gt=0)
    key_prefix: str = "wt:canary:"
    max_pending: int = Field(default=10_000, ge=1)


class DlqConfig(CollectorSection):
    """Dead-letter growth: the DLQ topic's size and headers, and the DLQ Delta table's rows by reason."""

    topic: str | None = Field(default=None, description="default: pipeline.dlq_topic; empty string: none")
    table: str | None = Field(
        default=None, description="path of the DLQ Delta table; default <pipeline.data_dir>/delta/dlq"
    )
    # watchtower_dlq_growth_per_minute is the size's increase over this window.
    rate_window: Duration = Field(default=300.0, gt=0)
    # Read the records added since the last cycle for a breakdown by their failure_reason header.
    read_headers: bool = True
    max_records_per_cycle: int = Field(default=10_000, ge=1)


class SparkProgressConfig(CollectorSection):
    """Spark query progress from the job's Redis stream: trigger phases, throughput, watermark, state."""

    stream: str | None = Field(default=None, description="default: pipeline.progress_stream")
    read_count: int = Field(default=1000, ge=1, description="stream entries per XREAD")


class CollectorsConfig(_Model):
    kafka_lag: KafkaLagConfig = Field(default_factory=KafkaLagConfig)
    e2e_latency: E2eLatencyConfig = Field(default_factory=E2eLatencyConfig)
    canary: CanaryConfig = Field(default_factory=CanaryConfig)
    dlq: DlqConfig = Field(default_factory=DlqConfig)
    spark_progress: SparkProgressConfig = Field(default_factory=SparkProgressConfig)
    pipeline_outcomes: PipelineOutcomesConfig = Field(default_factory=PipelineOutcomesConfig)


class DaemonConfig(_Model):
    http: HttpConfig = Field(default_factory=HttpConfig)
    history_size: int = Field(default=360, ge=1, description="readings kept per collector")
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces"
    )
    service_name: str = "watchtower"
    collectors: CollectorsConfig = Field(default_factory=CollectorsConfig)
