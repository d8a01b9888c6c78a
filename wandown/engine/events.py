"""Progress events: small immutable records on one queue, throttled so the queue never floods."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from wandown.status import Status

# The engine's states are statuses (wandown.status): the session shows them as they come.
PENDING = Status.PENDING
DOWNLOADING = Status.DOWNLOADING
VERIFYING = Status.VERIFYING
COMPLETE = Status.COMPLETE
FAILED = Status.FAILED
BUSY = Status.BUSY
CANCELLED = Status.CANCELLED
WAITING_DISK = Status.WAITING_DISK

STATES = (PENDING, DOWNLOADING, VERIFYING, COMPLETE, FAILED, BUSY, CANCELLED, WAITING_DISK)
FINAL_STATES = frozenset({COMPLETE, FAILED, CANCELLED})


@dataclass(frozen=True)
class Event:
    """What one file is doing now.

    `done` and `total` are bytes (`total` is None while the size is unknown), `speed` is bytes
    per second over the last few seconds, `message` says why for 'failed', 'busy' and retries.
    `endpoint` is the endpoint the bytes come from ("" before one is chosen), `failover` says
    its last move ("from A to B: why"; "" if it never moved).
    Each file's last event is in FINAL_STATES; no event for that key follows it.
    """

    key: str
    state: Status
    done: int
    total: int | None
    speed: float
    message: str = ""
    endpoint: str = ""
    failover: str = ""

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


class SpeedMeter:
    """Bytes per second over a sliding window of a few seconds."""

    def __init__(self, window: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()

    def update(self, done: int) -> float:
        """Record the byte count now and return the current speed."""
        now = self._clock()
        samples = self._samples
        if samples and done < samples[-1][1]:
            samples.clear()  # the count went back (partial discarded): start over
        samples.append((now, done))
        while len(samples) > 2 and now - samples[1][0] >= self._window:
            samples.popleft()
        first_time, first_done = samples[0]
        elapsed = now - first_time
        return (done - first_done) / elapsed if elapsed > 0 else 0.0


# Engine events, and None: put by whoever stops the reader, so that it wakes up at once.
EventQueue = queue.Queue[Event | None]


class Reporter:
    """Publish one file's events: state changes always, progress at most `per_second` times."""

    def __init__(
        self,
        key: str,
        events: EventQueue,
        per_second: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self._events = events
        self._interval = 1.0 / per_second
        self._clock = clock
        self._meter = SpeedMeter(clock=clock)
        self._last_sent = float("-inf")
        self.state: Status = PENDING
        self.done = 0
        self.total: int | None = None
        self.endpoint = ""
        self.failover = ""
        self.last: Event | None = None
        self._lock = threading.Lock()

    @property
    def finished(self) -> bool:
        """Tell whether this file's final event is out."""
        with self._lock:
            return self.last is not None and self.last.final

    def publish(self, state: Status, done: int | None = None, message: str = "") -> Event:
        """Send a state change (or a message) now."""
        with self._lock:
            if done is not None:
                self.done = done
            self.state = state
            return self._send(message)

    def progress(self, done: int, message: str = "") -> None:
        """Record progress; send it only if the last event is old enough."""
        with self._lock:
            self.done = done
            if self._clock() - self._last_sent >= self._interval:
                self._send(message)

    def _send(self, message: str) -> Event:
        if self.last is not None and self.last.final:
            return self.last  # nothing follows a final event
        speed = 0.0 if self.state in FINAL_STATES else self._meter.update(self.done)
        event = Event(
            self.key,
            self.state,
            self.done,
            self.total,
            speed,
            message,
            self.endpoint,
            self.failover,
        )
        self._last_sent = self._clock()
        self.last = event
        self._events.put(event)
        return event
