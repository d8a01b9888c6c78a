"""Notice a connection that still delivers bytes, but too few to ever finish."""

from __future__ import annotations

import time
from collections.abc import Callable


class TooSlow(Exception):
    """A connection stayed under the minimum speed for a whole window."""


class SpeedWatchdog:
    """Measure one connection's speed over windows of `window` seconds of network time.

    A read timeout catches a server that sends nothing; this catches one that trickles. Time
    spent waiting for the rate limiter is `pause`d out, so a low user limit is never mistaken
    for a slow server.
    """

    def __init__(
        self, min_speed: float, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._min_speed = min_speed
        self._window = window
        self._clock = clock
        self._mark = clock()
        self._bytes = 0
        self._paused = 0.0

    def pause(self, seconds: float) -> None:
        """Leave seconds spent waiting on our own limiter out of the measurement."""
        self._paused += seconds

    def feed(self, nbytes: int) -> None:
        """Count nbytes just received; raise TooSlow when a full window was too slow."""
        self._bytes += nbytes
        now = self._clock()
        elapsed = now - self._mark - self._paused
        if elapsed < self._window:
            return
        speed = self._bytes / elapsed
        self._mark, self._bytes, self._paused = now, 0, 0.0
        if speed < self._min_speed:
            raise TooSlow(f"the connection was too slow ({speed:.0f} B/s for {elapsed:.0f} s)")
