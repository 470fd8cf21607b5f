"""`ReadingSignal`: "collector X produced a reading at t", from the collector runner to whoever waits.

The runner publishes after each successful cycle (the reading is in the history by then); the alert
evaluator waits on it and evaluates the rules that read that collector's metrics at once, instead of at
its next timer tick. Publishing never blocks and never waits for the reader. Everything published since
the last `wait`/`take` comes back as one batch ({collector: newest reading time}), so a burst of readings
costs the reader one wake-up: that is the coalescing.
"""

from __future__ import annotations

import threading


class ReadingSignal:
    """A latest-value mailbox guarded by a Condition. Safe from any thread; no I/O."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._fresh: dict[str, float] = {}
        self.published = 0  # readings announced since start (a counter for status pages)

    def publish(self, collector: str, at: float) -> None:
        """Announce a reading of `collector` taken at `at` (epoch s). Never blocks for long."""
        with self._cond:
            prev = self._fresh.get(collector)
            self._fresh[collector] = at if prev is None else max(prev, at)
            self.published += 1
            self._cond.notify_all()

    def take(self) -> dict[str, float]:
        """Everything announced since the last take/wait ({collector: newest `at`}); clears it."""
        with self._cond:
            out, self._fresh = self._fresh, {}
        return out

    def wait(self, timeout: float) -> dict[str, float]:
        """Block until something is announced (or `timeout` seconds pass), then take it; {} on timeout."""
        with self._cond:
            if not self._fresh and timeout > 0:
                self._cond.wait(timeout)
            out, self._fresh = self._fresh, {}
        return out

    def pending(self) -> int:
        """How many collectors announced a reading nobody has taken yet."""
        with self._cond:
            return len(self._fresh)

    def poke(self) -> None:
        """Wake a waiter without announcing anything (used to stop it promptly)."""
        with self._cond:
            self._cond.notify_all()
