"""How much a connection asks for in one read: large when bytes pour in, within a memory bound.

Each read allocates what it asks for. A fast connection spends less CPU per byte in fewer,
larger reads (1 MiB rather than 256 KiB: about a tenth less for an uncapped download), but
two files of 16 connections each asking 1 MiB would hold 32 MiB in flight, and every thread's
malloc arena keeps the high-water mark of what it held. So every connection of the process
shares one bound, and each asks for twice what its last read brought: more while reads come
back full, never much more than arrives.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from .ranges import MIB

FIRST_READ = 256 * 1024
SMALLEST_READ = 64 * 1024
READ_MEMORY = 8 * MIB


class ReadSizes:
    """The largest read each connection may ask for: `most`, or less when many run at once.

    One instance is shared by the whole engine (thread-safe): a connection counts itself in
    with `joined()` while it runs, and takes a `response()` for each response it reads.
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

    def response(self) -> ResponseReads:
        """Return the read sizes of one response, bounded by the share of memory it starts with.

        A response lasts one range (16 MiB by default) or, rarely, one whole file: connections
        that join meanwhile lower the bound from the next response on, so no read takes a lock.
        """
        return ResponseReads(self.largest())


class ResponseReads:
    """The read size of one response, owned by the connection reading it (not thread-safe)."""

    def __init__(self, largest: int) -> None:
        self.largest = largest
        self.size = min(FIRST_READ, largest)

    def after(self, asked: int, got: int) -> None:
        """Size the next read after one of `asked` bytes brought `got`: twice `got`.

        A full read so doubles the next, and one that came back partly empty shrinks it to what
        arrives, so no read allocates much more than it fills. Never under SMALLEST_READ, never
        over `largest`.
        """
        self.size = min(self.largest, max(SMALLEST_READ, 2 * min(got, asked)))
