"""One token bucket shared by every connection of the process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

KIB = 1024
"""Bytes in the "KB" of every user-facing limit (the original tool's KB/s): 1 KB = 1024 bytes."""

# A sleeping connection wakes at least this often, so a new limit (or a cancel) is noticed promptly.
_MAX_NAP = 0.05

# Largest grant when a limit is set: keeps many connections taking turns instead of one hogging.
_MAX_GRANT = 64 * KIB


def kb_to_rate(limit_kb: float | None) -> float | None:
    """Turn a limit in KB/s (1 KB = 1024 bytes; None or 0 = unlimited) into bytes per second."""
    if not limit_kb:
        return None
    return float(limit_kb) * KIB


class RateLimiter:
    """Grant bytes to readers at no more than `rate` bytes per second, all threads together.

    The bucket holds at most `burst` bytes (default: a fifth of a second's worth) and starts
    empty, so over any window of T seconds at most `rate * T + burst` bytes are granted. A
    `rate` of None means unlimited; `set_rate` may be called at any time from any thread.
    `clock` and `sleep` are injectable so tests can drive time by hand.
    """

    def __init__(
        self,
        rate_bytes_per_s: float | None,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._burst_setting = burst
        self._tokens = 0.0
        self._stamp = clock()
        self._rate: float | None = None
        self._burst = 0.0
        self.set_rate(rate_bytes_per_s)

    @property
    def rate(self) -> float | None:
        """Return the current limit in bytes per second, or None when unlimited."""
        return self._rate

    def set_rate(self, rate_bytes_per_s: float | None) -> None:
        """Change the limit; readers asleep in `acquire` notice within a few tens of ms."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            if not rate_bytes_per_s:
                self._rate = None
                return
            self._rate = float(rate_bytes_per_s)
            burst = self._burst_setting
            self._burst = float(burst) if burst else max(1.0, self._rate / 5)
            self._tokens = min(self._tokens, self._burst)

    def acquire(self, want: int, cancelled: Callable[[], bool] = lambda: False) -> int:
        """Block until some bytes may be read and return how many (1..want); 0 if cancelled.

        With no limit the whole `want` is granted at once. With a limit the grant is at most
        `min(want, burst, 64 KiB)`, so callers read in the granted size and ask again.
        """
        if want <= 0:
            return 0
        while True:
            if cancelled():
                return 0
            with self._lock:
                rate = self._rate
                if rate is None:
                    return want
                now = self._clock()
                self._refill(now)
                grant = int(min(want, self._burst, _MAX_GRANT))
                grant = max(grant, 1)
                # Half a byte of slack: float rounding must not leave a reader napping for 1e-12 s.
                if self._tokens + 0.5 >= grant:
                    self._tokens -= grant
                    return grant
                nap = (grant - self._tokens) / rate
            self._sleep(min(nap, _MAX_NAP))

    def _refill(self, now: float) -> None:
        elapsed = now - self._stamp
        self._stamp = now
        if self._rate is not None and elapsed > 0:
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
