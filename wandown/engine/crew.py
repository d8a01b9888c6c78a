"""The connection threads of one pass over a file: started, retired, and reopened when lagging."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable

from wandown.errors import DownloadError

from .connection import Connections, Slot
from .controller import lagging
from .ranges import RangePlanner

# The window over which connections are compared; a new or reopened one is measured from the
# next window on, so its connection set-up is not held against it.
JUDGE_EVERY = 0.5


class Crew:
    """The threads fetching one file's ranges; `resize` follows the budget's share.

    A thread told to retire ends at its next read and hands the rest of its range back to the
    planner (only the bytes in flight on its socket are fetched again); one told to reopen
    continues its range on a new socket, perhaps to another CDN edge.
    """

    def __init__(
        self,
        net: Connections,
        fd: int,
        planner: RangePlanner,
        single: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._net = net
        self._fd = fd
        self._planner = planner
        self._single = single
        self._clock = clock
        self._threads: dict[Slot, threading.Thread] = {}
        self._started = 0
        self._marks: dict[Slot, int] = {}  # slot -> bytes it had received at the last look
        self._judged = clock()
        self._usual: float | None = None  # the median rate when three or more were measured
        self.reopened = 0

    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads.values())

    def working(self) -> list[Slot]:
        """Return the slots whose thread runs and is not retiring."""
        return [s for s, t in self._threads.items() if t.is_alive() and not s.retire]

    def resize(self, count: int) -> None:
        """Run count connections: start more while there is work for them, or retire some."""
        self._threads = {s: t for s, t in self._threads.items() if t.is_alive()}
        working = self.working()
        for slot in working[count:]:
            slot.retire = True
        for _ in range(count - len(working)):
            if self._net.stopping() or not self._planner.can_take() or not self._start():
                return

    def revive(self, count: int) -> bool:
        """Start connections again for ranges handed back after every other one had ended.

        A connection given back hands the rest of its range to the planner; if the others had
        found nothing left and ended meanwhile, nobody would take it. Returns whether any runs.
        """
        if not self.alive() and not self._net.stopping() and self._planner.remaining_work():
            self.resize(1 if self._single else count)
        return self.alive()

    def join(self) -> None:
        for thread in self._threads.values():
            thread.join()

    def reopen_lagging(self) -> None:
        """Once a window: reopen the connections far below the others' median, if any."""
        now = self._clock()
        elapsed = now - self._judged
        if elapsed < JUDGE_EVERY:
            return
        self._judged = now
        rates = []
        marks = {}
        for slot in self.working():
            marks[slot] = slot.received
            before = self._marks.get(slot)
            # Measured: a connection that ran the whole window and still holds a range.
            if before is not None and slot.busy:
                rates.append((slot.number, (slot.received - before) / elapsed))
        self._marks = marks
        if len(rates) >= 3:
            self._usual = statistics.median(rate for _, rate in rates)
        # At the tail the others have ended: a lone laggard is judged by the usual rate.
        slow = set(lagging(rates, usual=self._usual))
        for slot in [slot for slot in marks if slot.number in slow]:
            slot.ask_reopen()
            self._marks.pop(slot)  # a fresh connection gets a window to show itself
            self.reopened += 1

    def _start(self) -> bool:
        """Start one connection thread; False (and the pass failed) if the system refuses."""
        slot = Slot(self._started)
        thread = threading.Thread(
            target=self._net.run,
            args=(self._fd, self._planner, self._single, slot),
            name=f"wandown-conn-{self._started}",
            daemon=True,
        )
        try:
            thread.start()
        except RuntimeError as error:  # "can't start new thread": out of threads or memory
            if not self._threads:
                self._net.fail(
                    DownloadError(
                        f"{self._net.job.dest.name}: cannot start a download thread ({error}); "
                        "close other programs or lower the connections and run again"
                    )
                )
            return False
        self._started += 1
        self._threads[slot] = thread
        return True
