"""Who may act: the gate every actor (notification dispatcher, scaling controller) checks before acting.

When two daemons run for availability, exactly one holds the lease; its fencing token grows with every
change of holder, so a write made by a deposed leader can be recognised and refused by the resource.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class LeaderGate(Protocol):
    """`holds()` returns the fencing token while this process leads, else None.

    It does no I/O and never blocks (it reads the state the lease keeper refreshes on its own thread),
    so an actor may call it right before every action.
    """

    def holds(self) -> int | None: ...


class AlwaysLeader:
    """A single daemon: always leads, with a constant token. The default when no lease is configured."""

    def __init__(self, token: int = 1):
        self._token = token

    def holds(self) -> int | None:
        return self._token
