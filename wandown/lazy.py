"""A value made the first time it is asked for, once, whichever thread asks first.

The engine and the Hub connection bring urllib3 and the whole downloader, which the first
frame, a --list or an offline start never need; several threads may be the first to ask.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class OnFirstUse(Generic[T]):
    """Hold what `make()` returns, calling it on the first `get()` only (thread-safe)."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        """Return the value, making it now if nobody asked before."""
        with self._lock:
            if self._value is None:
                self._value = self._make()
            return self._value

    def made(self) -> T | None:
        """Return the value if it was made, or None, without making it."""
        with self._lock:
            return self._value
