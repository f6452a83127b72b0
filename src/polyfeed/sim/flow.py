"""How many order-flow events the local exchange runs at each tick of its flow loop: sans-I/O, times in
and counts out, so that a test can stall it without stalling anything.

Events are owed at ``events_per_s`` of the wall clock. A loop that stalled (a garbage collection, a
slow handler, a loaded host) would then owe every event of the stall at once: thousands of messages in
one burst to every connection, and a loop that cannot keep up would owe more at every tick. So at most
``max_catch_up_s`` of events are run at once and the rest are dropped, counted in
:attr:`FlowPacer.skipped`; the exchange's clock still moves on by the time they would have taken, so
that it keeps with the wall clock (:attr:`FlowPacer.skipped_ms`).
"""

from __future__ import annotations

__all__ = ["MAX_CATCH_UP_S", "FlowPacer"]

MAX_CATCH_UP_S = 0.1
"""The most events a tick runs, in seconds of the flow: ten ticks' worth of the loop's 10 ms ticks."""


class FlowPacer:
    """The events due at each tick of a flow loop.

    Args:
        events_per_s: the flow's rate, events a second of the wall clock.
        now_s: the loop's time when the flow starts (seconds, any origin).
        step_ms: how far each event moves the exchange's clock (for :attr:`skipped_ms`).
        max_catch_up_s: the most a tick catches up, in seconds of the flow.
    """

    def __init__(
        self, events_per_s: float, now_s: float, step_ms: int = 1, max_catch_up_s: float = MAX_CATCH_UP_S
    ) -> None:
        if not events_per_s > 0:
            raise ValueError("events_per_s must be positive")
        self.events_per_s = events_per_s
        self.step_ms = step_ms
        self.cap = max(1, int(events_per_s * max_catch_up_s))
        """The most events a tick runs."""
        self.skipped = 0
        """Events dropped in all, because the loop was too late to run them."""
        self.largest = 0
        """The most events any tick ran."""
        self._owed = 0.0
        self._last_s = now_s

    def due(self, now_s: float) -> tuple[int, int]:
        """The events to run now, and how many were dropped this tick (0 unless the loop fell behind)."""
        self._owed += max(0.0, now_s - self._last_s) * self.events_per_s
        self._last_s = now_s
        dropped = 0
        if self._owed > self.cap:
            dropped = int(self._owed) - self.cap
            self._owed -= dropped
            self.skipped += dropped
        events = int(self._owed)
        self._owed -= events
        self.largest = max(self.largest, events)
        return events, dropped

    def skipped_ms(self, dropped: int) -> int:
        """How far the exchange's clock moves for ``dropped`` events it never ran."""
        return dropped * self.step_ms

    def pause(self, now_s: float) -> None:
        """Nothing is owed for a pause: the flow resumes from ``now_s``, its debt forgotten."""
        self._owed = 0.0
        self._last_s = now_s
