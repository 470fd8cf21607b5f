"""The `ha:` config section: run two daemons for availability, with exactly one acting.

    ha:
      enabled: true
      lease: 10s              # a dead leader is replaced within this time
      redis_prefix: "watchtower:ha:"

The lease lives in the daemon's Redis (`redis.url`), the one that holds the alert outbox. Validation only.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from watchtower.core.units import Duration


class HAConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    # How long a lease lasts without renewal; the holder renews at a third of it. A leader that cannot
    # renew stops acting at once; a dead one is replaced once its lease runs out.
    lease: Duration = Field(default=10.0, ge=0.3, le=600.0)
    redis_prefix: str = Field(default="watchtower:ha:", min_length=1)
    # Who this daemon is in the lease (logs, /api/v1/status); default: host:pid:random.
    holder_id: str | None = None
