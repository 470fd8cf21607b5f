"""Mode `keda`: the decisions KEDA's Kafka scaler and the HPA behind it would take on the same inputs. Pure.

KEDA (`pkg/scalers/kafka_scaler.go`, getTotalLag / getLagForPartition):
- per partition lag = end offset - committed; no committed offset: 1 (0 with scaleToZeroOnInvalidOffset);
- excludePersistentLag: a partition whose committed offset equals the previous poll's counts 0 (it still
  counts for activation);
- unless allowIdleConsumers (or with limitToPartitionsWithLag): when totalLag / lagThreshold (integer
  division) exceeds the partitions (or the partitions with lag), totalLag = that bound x lagThreshold;
- active while the lag including persistent lag exceeds activationLagThreshold.
HPA (AverageValue target = lagThreshold): desired = ceil(totalLag / lagThreshold), no change inside the
tolerance (10 %), scale-down to the highest recommendation of the last 300 s, scale-up at most
max(+100 %, +4) per 15 s, then min/max replicas. Inactive with min_replicas 0: zero (KEDA's cooldownPeriod
is not modelled).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from watchtower.scale.base import Decision
from watchtower.scale.config import TargetConfig
from watchtower.scale.inputs import Inputs


def total_lag(inputs: Inputs, k: Any, previous: dict[int, int]) -> tuple[int, int, int, int]:
    """(capped total lag, lag with persistent, partitions with lag, uncapped total lag)."""
    lag = with_persistent = with_lag = 0
    for p, end in sorted(inputs.end.items()):
        committed = inputs.committed.get(p)
        if committed is None:
            part = 0 if k.scale_to_zero_on_invalid_offset else 1
            lag, with_persistent = lag + part, with_persistent + part
            with_lag += part > 0
            continue
        part = end - committed
        with_persistent += part
        if k.exclude_persistent_lag and previous.get(p) == committed:
            part = 0
        lag += part
        with_lag += part > 0
    uncapped = lag
    if not k.allow_idle_consumers or k.limit_to_partitions_with_lag:
        upper = with_lag if k.limit_to_partitions_with_lag else inputs.partitions
        if lag // k.lag_threshold > upper:
            lag = upper * k.lag_threshold
    return lag, with_persistent, with_lag, uncapped


def evaluate_keda(
    inputs: Inputs, now: float, current: int, target: TargetConfig, memory: Any, name: str
) -> tuple[Decision, Any]:
    k = target.keda
    info: dict[str, Any] = {"mode": "keda", "partitions": inputs.partitions}
    if not inputs.has_data:
        return Decision(name, now, current, current, "not enough readings yet", "no_data", info), memory
    previous = dict(memory.keda_previous)
    lag, with_persistent, with_lag, uncapped = total_lag(inputs, k, previous)
    memory = replace(memory, keda_previous=tuple(sorted(inputs.committed.items())))
    active = with_persistent > k.activation_lag_threshold
    info.update(
        total_lag=lag, total_lag_with_persistent=with_persistent, partitions_with_lag=with_lag, active=active
    )
    hpa_min = max(target.min_replicas, 1)
    if not active and target.min_replicas == 0:
        rec, why = 0, f"inactive: lag {with_persistent} <= activation threshold {k.activation_lag_threshold}"
    else:
        raw = math.ceil(lag / k.lag_threshold)
        if current > 0 and abs(lag / (k.lag_threshold * current) - 1) <= k.tolerance:
            rec, why = current, f"within HPA tolerance: lag {lag} / ({k.lag_threshold} x {current})"
        else:
            rec, why = raw, f"ceil(totalLag {lag} / lagThreshold {k.lag_threshold}) = {raw}"
        rec = max(hpa_min, min(rec, target.max_replicas))
    required = math.ceil(uncapped / k.lag_threshold)
    info.update(required=required, partitions_capped=required > inputs.partitions, recommendation=rec)
    recs = tuple((at, r) for at, r in memory.recommendations if at >= now - k.scale_down_stabilization) + (
        (now, rec),
    )
    memory = replace(memory, recommendations=recs)
    want = rec
    if rec < current:
        want = min(current, max(r for _, r in recs))
        if want > rec:
            why += f"; HPA scale-down stabilization holds {want}"
    elif rec > current:
        ups = tuple((at, n) for at, n in memory.keda_scale_ups if at > now - k.scale_up_period)
        memory = replace(memory, keda_scale_ups=ups)
        base = min([n for _, n in ups] + [current])
        limit = max(math.ceil(base * (1 + k.scale_up_percent / 100)), base + k.scale_up_pods)
        if want > limit:
            want, why = limit, why + f"; HPA scale-up policy limits to {limit}"
    return Decision(name, now, current, want, why, None, info), memory
