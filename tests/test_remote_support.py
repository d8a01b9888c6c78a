"""Helpers shared by the remote tests (no tests here)."""

from __future__ import annotations

import threading
from collections.abc import Callable


class FakeClock:
    """A clock (call it for the time) whose wait() records each wait and only advances it.

    `on_wait` runs inside every wait with the cancel event, so a test can play a user who
    presses Ctrl-C while wandown waits for a rate limit to pass.
    """

    def __init__(
        self,
        start: float = 1_000_000.0,
        on_wait: Callable[[threading.Event], None] | None = None,
    ) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.on_wait = on_wait

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float, cancel: threading.Event) -> None:
        self.sleeps.append(seconds)
        if self.on_wait is not None:
            self.on_wait(cancel)
        if not cancel.is_set():
            self.now += seconds
