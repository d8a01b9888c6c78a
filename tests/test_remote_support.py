"""Helpers shared by the remote tests (no tests here)."""

from __future__ import annotations


class FakeClock:
    """A clock (call it for the time) whose sleep() records the wait and only advances it."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
