"""Prometheus families for the HA lease (`ha.enabled`), built fresh on each scrape: is this daemon the
leader, its fencing token, how often it won and lost the lease. Two daemons scraped side by side show
exactly one `watchtower_ha_leader 1`; a flapping lease shows as growing acquisitions and losses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector as PromCollector
from prometheus_client.samples import Sample as PromSample

from watchtower.core.health import HA_SPECS
from watchtower.exposition.prometheus import family_name


class LeaseStatus(Protocol):
    """What the exposition reads of a lease (watchtower.daemon.leader.RedisLease). `holds()` does no I/O."""

    holder_id: str
    acquisitions: int
    losses: int

    def holds(self) -> int | None: ...


class LeaderCollector(PromCollector):
    def __init__(self, lease: LeaseStatus):
        self.lease = lease
        self.specs = {s.name: s for s in HA_SPECS}

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        token = self.lease.holds()
        labels = {"holder": self.lease.holder_id}
        values = {
            "watchtower_ha_leader": 1.0 if token is not None else 0.0,
            "watchtower_ha_lease_acquisitions_total": float(self.lease.acquisitions),
            "watchtower_ha_lease_losses_total": float(self.lease.losses),
        }
        if token is not None:
            values["watchtower_ha_fencing_token"] = float(token)
        for name, spec in self.specs.items():
            if name not in values:
                continue
            m = Metric(family_name(spec), spec.help, spec.kind.value)
            m.samples.append(PromSample(name, labels, values[name], None, None))
            yield m
