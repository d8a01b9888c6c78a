"""How many connections to use: grow while the total rate rises, and spot a lagging connection.

A fixed count is wrong both ways: a CDN that caps each connection needs many, a saturated
link (or the user's bandwidth limit) gets slower with more. So the count starts small and
doubles while each step raises the total rate about as much as it added connections; a step
that brings nothing is given back, and later single steps probe whether the link has room.
When the very first step brings nothing, the link was already full at the start: half as many
are tried, and kept if they carry as much (each connection costs CPU, and on a full link they
only slow each other down). Everything here is pure but for the clock, which tests drive by hand.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# A step is worth keeping when the total rose by at least this share of what the added
# connections would bring if each carried as much as the others (2 -> 4 must give +50%).
KEEP_GAIN = 0.5
# Below this share the step brought nothing: give it back.
NO_GAIN = 0.15
# A step whose gain falls between the two is measured again over this many windows together.
UNCLEAR_WINDOWS = 3
# A connection below this share of the others' median is lagging (a slow edge, a bad route).
LAGGING = 0.35
# Half the starting count is kept if it loses at most this share of the rate.
FEWER_LOSS = 0.1


@dataclass
class Step:
    """The count before the last change and the total rate measured at it."""

    count: int
    rate: float


class ConnectionController:
    """Decide how many connections to run, from the total byte count sampled every `interval`.

    `update(total_bytes)` returns the count to run now; `ceiling` (the config's `connections`,
    times the files downloading) may change between calls. Doubling from `start` while each
    step pays; after a step that does not, hold, and every `probe_every` seconds try one more.
    If the first step already brought nothing, half of `start` is tried before holding.
    A step is measured only `settle` seconds after it is taken: a new connection to a real CDN
    spends a few round trips on TCP and TLS before its first byte. A step whose gain is unclear
    (between NO_GAIN and KEEP_GAIN) is judged again over a longer window before it is kept.
    """

    def __init__(
        self,
        ceiling: int,
        start: int = 4,
        interval: float = 0.25,
        probe_every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        settle: float = 0.1,
    ) -> None:
        self.ceiling = max(1, ceiling)
        self.settle = settle
        self._settled_at = clock()
        self.count = max(1, min(start, self.ceiling))
        self.interval = interval
        self._window = interval  # longer while an unclear step is judged again
        self.probe_every = probe_every
        self._clock = clock
        self._mark: tuple[float, int] | None = None
        self._before: Step | None = None  # set while a step is being judged
        self._growing = True
        self._held_since = clock()
        self._fewer_tried = False

    def set_ceiling(self, ceiling: int) -> None:
        """Change the most connections allowed; a count above it drops at once.

        The ceiling changes when a file starts or ends: a step being judged then compares rates
        of other files, so it is dropped (a halving goes back to the count it halved).
        """
        ceiling = max(1, ceiling)
        if ceiling != self.ceiling and self._before is not None:
            if self.count < self._before.count:
                self.count = self._before.count
            self._before = None
            self._window = self.interval
            self._mark = None
        if ceiling > self.ceiling and not self._growing:
            self._held_since = self._clock() - self.probe_every  # room again: probe soon
        self.ceiling = ceiling
        if self.count > ceiling:
            self.count = ceiling
            self._before = None
            self._window = self.interval

    def update(self, total_bytes: int) -> int:
        """Take the byte count of every connection together; return how many to run."""
        now = self._clock()
        if self._mark is None or total_bytes < self._mark[1] or now < self._settled_at:
            # First sample, the count went back, or new connections still connecting.
            self._mark = (now, total_bytes)
            return self.count
        elapsed = now - self._mark[0]
        if elapsed < self._window:
            return self.count
        rate = (total_bytes - self._mark[1]) / elapsed
        if self._decide(rate, now):
            self._mark = (now, total_bytes)
        return self.count

    def _decide(self, rate: float, now: float) -> bool:
        """Act on the rate measured; False to go on measuring the step from the same mark."""
        before = self._before
        self._before = None
        if before is not None and self.count < before.count:
            return self._judge_fewer(before, rate, now)
        if before is not None:
            added = max(1, self.count - before.count)
            rise = (rate - before.rate) / before.rate if before.rate > 0 else 1.0
            gain = rise / (added / before.count)
            if NO_GAIN <= gain < KEEP_GAIN and self._window == self.interval:
                # Unclear: one window's rate swings by a fifth on a busy machine, so the
                # step is judged again on UNCLEAR_WINDOWS windows together.
                self._before = before
                self._window = UNCLEAR_WINDOWS * self.interval
                return False
            self._window = self.interval
            if gain < NO_GAIN:
                self.count = before.count  # nothing for it: give the step back
                if self._growing and not self._fewer_tried and before.count > 1:
                    self._try_fewer(before)  # full from the start: would fewer do as well?
                    return True
                self._hold(now)
                return True
            self._fewer_tried = True  # the step paid: the link was not full at the start
            if gain < KEEP_GAIN:
                self._hold(now)
                return True
        if self.count >= self.ceiling or rate <= 0:
            if rate > 0:
                self._hold(now)
            return True
        if self._growing:
            self._step(min(self.ceiling, self.count * 2), rate)
        elif now - self._held_since >= self.probe_every:
            self._step(self.count + 1, rate)
        return True

    def _try_fewer(self, start: Step) -> None:
        """Step down to half of start.count (the count now), judged against start's rate."""
        self._fewer_tried = True
        self._step(max(1, start.count // 2), start.rate)

    def _judge_fewer(self, start: Step, rate: float, now: float) -> bool:
        """Keep the smaller count if it carried the rate of the start; else go back to it.

        A window that says keep is confirmed on UNCLEAR_WINDOWS windows together first: a lucky
        one must not leave a capped link with half the connections it needs.
        """
        carried = rate >= (1 - FEWER_LOSS) * start.rate
        if carried and self._window == self.interval:
            self._before = start
            self._window = UNCLEAR_WINDOWS * self.interval
            return False
        self._window = self.interval
        if not carried:
            self.count = min(start.count, self.ceiling)
        self._hold(now)
        return True

    def _step(self, count: int, rate: float) -> None:
        self._before = Step(self.count, rate)
        self.count = count
        self._settled_at = self._clock() + self.settle

    def _hold(self, now: float) -> None:
        self._growing = False
        self._held_since = now


def lagging(
    rates: Iterable[tuple[int, float]], share: float = LAGGING, usual: float | None = None
) -> list[int]:
    """Return the ids of connections far below the others' median rate, slowest first.

    Takes (id, bytes per second) for the connections measured over a whole window. With three
    or more the median says what is usual; with fewer, `usual` (an earlier median) does, or
    there is no telling a slow edge from a slow link. At most a quarter of them (one at least)
    are named at a time, so reopening never churns most connections at once.
    """
    measured = sorted(rates, key=lambda item: item[1])
    if len(measured) >= 3:
        usual = statistics.median(rate for _, rate in measured)
    if usual is None or usual <= 0:
        return []
    slow = [number for number, rate in measured if rate < share * usual]
    return slow[: max(1, len(measured) // 4)]


class ConnectionBudget:
    """The connections of every file downloading at once: one controller, fair shares.

    Each file joins with a function giving its finished byte count; the controller sees the
    total of all of them (so two files never race each other for the same link), and its
    count is split evenly among the files, none above the per-file `ceiling`. Thread-safe.
    """

    def __init__(
        self,
        ceiling: int,
        start: int = 4,
        interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_file = max(1, ceiling)
        self._controller = ConnectionController(
            self.per_file, start=start, interval=interval, clock=clock
        )
        # key -> (its finished byte count, that count when it joined: a resumed prefix is
        # not bytes that arrived)
        self._files: dict[str, tuple[Callable[[], int], int]] = {}
        self._offset = 0  # bytes that arrived for files that left, so the total never drops
        self._lock = threading.Lock()

    def join(self, key: str, done: Callable[[], int]) -> None:
        """Count the file `key` in; `done()` returns its finished bytes."""
        with self._lock:
            self._files[key] = (done, done())
            self._controller.set_ceiling(self.per_file * len(self._files))

    def leave(self, key: str) -> None:
        with self._lock:
            entry = self._files.pop(key, None)
            if entry is not None:
                self._offset += max(0, entry[0]() - entry[1])
            self._controller.set_ceiling(self.per_file * max(1, len(self._files)))

    def share(self, key: str) -> int:
        """Return how many connections the file `key` may run now (ticks the controller)."""
        with self._lock:
            arrived = (max(0, done() - base) for done, base in self._files.values())
            total = self._offset + sum(arrived)
            count = self._controller.update(total)
            keys = sorted(self._files)
            if key not in keys:
                return 1
            each, extra = divmod(count, len(keys))
            mine = each + (1 if keys.index(key) < extra else 0)
            return max(1, min(self.per_file, mine))
