"""How much a connection asks for in one read: large when bytes pour in, within a memory bound.

Each read allocates what it asks for. A fast connection spends less CPU per byte in fewer,
larger reads (1 MiB rather than 256 KiB: about a tenth less for an uncapped download), but
two files of 16 connections each asking 1 MiB would hold 32 MiB in flight. So every
connection of the process shares one bound, and each grows its reads only while they come
back full.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from .ranges import MIB

FIRST_READ = 256 * 1024
SMALLEST_READ = 64 * 1024
READ_MEMORY = 16 * MIB


class ReadSizes:
    """The largest read each connection may ask for: `most`, or less when many run at once.

    One instance is shared by the whole engine (thread-safe): a connection counts itself in
    with `joined()` while it runs, and asks `largest()` before sizing a read.
    """

    def __init__(self, most: int, memory: int = READ_MEMORY) -> None:
        self.most = max(1, most)
        self.memory = memory
        self._running = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def joined(self) -> Iterator[None]:
        """Count one running connection in for the duration of the block."""
        with self._lock:
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1

    def largest(self) -> int:
        """Return the largest read a connection may ask for now."""
        with self._lock:
            share = self.memory // max(1, self._running)
        return max(min(self.most, FIRST_READ), min(self.most, share))

    def first(self) -> int:
        """Return the size of a connection's first read of a response."""
        return min(FIRST_READ, self.largest())

    def next(self, asked: int, got: int) -> int:
        """Return the next read's size after one of `asked` bytes brought `got`.

        A full read doubles the next (up to `largest()`); one that brought under a quarter of
        what it asked halves it (down to SMALLEST_READ); else the size stays.
        """
        largest = self.largest()
        if got >= asked:
            return min(largest, asked * 2)
        if got < asked // 4:
            return min(largest, max(SMALLEST_READ, asked // 2))
        return min(largest, asked)
