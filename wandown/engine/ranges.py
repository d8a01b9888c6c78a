"""Which bytes of a file are done, and which byte range each connection fetches next."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from dataclasses import dataclass

MIB = 1024 * 1024


class RangeSet:
    """A sorted set of disjoint half-open byte ranges [start, end); not thread-safe by itself."""

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in ranges:
            self.add(start, end)

    def add(self, start: int, end: int) -> None:
        """Mark [start, end) as covered, merging with touching or overlapping ranges."""
        if end <= start:
            return
        # First range whose end reaches start, last range whose start is within end.
        lo = bisect.bisect_left(self._ends, start)
        hi = bisect.bisect_right(self._starts, end)
        if lo < hi:
            start = min(start, self._starts[lo])
            end = max(end, self._ends[hi - 1])
        self._starts[lo:hi] = [start]
        self._ends[lo:hi] = [end]

    def prefix_end(self) -> int:
        """Return how many bytes from offset 0 are covered without a gap."""
        if self._starts and self._starts[0] == 0:
            return self._ends[0]
        return 0

    def total(self) -> int:
        """Return the number of covered bytes."""
        return sum(e - s for s, e in zip(self._starts, self._ends, strict=True))

    def missing(self, size: int) -> list[tuple[int, int]]:
        """Return the gaps in [0, size), in order."""
        gaps = []
        cursor = 0
        for start, end in zip(self._starts, self._ends, strict=True):
            if start >= size:
                break
            if start > cursor:
                gaps.append((cursor, start))
            cursor = max(cursor, end)
        if cursor < size:
            gaps.append((cursor, size))
        return gaps

    def covers(self, size: int) -> bool:
        """Return True when every byte of [0, size) is covered."""
        return self.prefix_end() >= size

    def ranges(self) -> list[tuple[int, int]]:
        """Return the ranges as (start, end) pairs."""
        return list(zip(self._starts, self._ends, strict=True))

    def without(self, other: RangeSet) -> RangeSet:
        """Return the bytes covered here and not in other."""
        left = RangeSet()
        for start, end in self.ranges():
            cursor = start
            for o_start, o_end in other.ranges():
                if o_end <= cursor or o_start >= end:
                    continue
                left.add(cursor, o_start)
                cursor = max(cursor, o_end)
            left.add(cursor, end)
        return left

    def within(self, other: RangeSet) -> RangeSet:
        """Return the bytes covered both here and in other."""
        return self.without(self.without(other))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RangeSet) and self.ranges() == other.ranges()

    def __repr__(self) -> str:
        return f"RangeSet({self.ranges()!r})"


@dataclass
class Assignment:
    """One connection's current work: bytes [cursor, end) remain; `end` may shrink when split."""

    start: int
    cursor: int
    end: int

    @property
    def remaining(self) -> int:
        return max(0, self.end - self.cursor)


class RangePlanner:
    """Hand out byte ranges to connections so the file fills from the front and ends together.

    Ranges are taken in file order (so the hasher can follow the growing prefix), their size
    shrinks from `max_chunk` toward `min_chunk` as the unassigned remainder drops below one
    chunk per connection, and a connection that finds nothing left takes the second half of
    the largest range still in flight, so no single slow connection finishes alone.
    Thread-safe; `changed` is notified whenever the done prefix grows.
    """

    def __init__(
        self, size: int, done: RangeSet, connections: int, max_chunk: int, min_chunk: int
    ) -> None:
        self.size = size
        self.done = done
        self._connections = max(1, connections)
        self._max_chunk = max(1, max_chunk)
        self._min_chunk = max(1, min(min_chunk, self._max_chunk))
        self._gaps = done.missing(size)
        self._active: list[Assignment] = []
        self.changed = threading.Condition()

    def next(self) -> Assignment | None:
        """Return the next range for an idle connection, or None when nothing is left to take."""
        with self.changed:
            if self._gaps:
                return self._take_from_gaps()
            return self._split_largest()

    def advance(self, work: Assignment, nbytes: int) -> None:
        """Record that nbytes at work.cursor are written to disk.

        Only a longer done prefix wakes the hasher: the bytes of the other connections are of
        no use to it yet, and waking it for each of their reads costs more than the reads.
        """
        with self.changed:
            before = self.done.prefix_end()
            stop = min(work.cursor + nbytes, work.end)
            if stop > work.cursor:
                self.done.add(work.cursor, stop)
            work.cursor += nbytes
            if self.done.prefix_end() > before:
                self.changed.notify_all()

    def finish(self, work: Assignment) -> None:
        """Drop work from the active list; a remainder left by an error is planned again."""
        with self.changed:
            if work in self._active:
                self._active.remove(work)
            if work.cursor < work.end:
                self._return_gap(work.cursor, work.end)

    def can_take(self) -> bool:
        """Tell whether a new connection would find work: a gap, or a range worth splitting."""
        with self.changed:
            return bool(self._gaps) or any(w.remaining >= 2 * self._min_chunk for w in self._active)

    def remaining_work(self) -> bool:
        """Return True while some range is unassigned or in flight."""
        with self.changed:
            return bool(self._gaps or self._active)

    def snapshot(self) -> list[tuple[int, int]]:
        """Return the done ranges, for the state file."""
        with self.changed:
            return self.done.ranges()

    def prefix_end(self) -> int:
        with self.changed:
            return self.done.prefix_end()

    def done_bytes(self) -> int:
        with self.changed:
            return self.done.total()

    def _take_from_gaps(self) -> Assignment:
        unassigned = sum(end - start for start, end in self._gaps)
        chunk = min(self._max_chunk, max(self._min_chunk, unassigned // self._connections))
        start, end = self._gaps[0]
        stop = min(end, start + chunk)
        # Do not leave a sliver behind that would cost a request of its own.
        if end - stop < self._min_chunk // 4:
            stop = end
        if stop == end:
            self._gaps.pop(0)
        else:
            self._gaps[0] = (stop, end)
        work = Assignment(start, start, stop)
        self._active.append(work)
        return work

    def _split_largest(self) -> Assignment | None:
        victim = max(self._active, key=lambda w: w.remaining, default=None)
        if victim is None or victim.remaining < 2 * self._min_chunk:
            return None
        middle = victim.cursor + victim.remaining // 2
        work = Assignment(middle, middle, victim.end)
        victim.end = middle
        self._active.append(work)
        return work

    def _return_gap(self, start: int, end: int) -> None:
        gaps = RangeSet(self._gaps)
        gaps.add(start, end)
        self._gaps = gaps.ranges()
