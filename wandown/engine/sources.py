"""Where each file is fetched from: the ordered endpoints, failover, and the ones that lied.

The source of truth gives the metadata (size, sha256) every file is verified against; the
other endpoints (a LAN peer, a caching proxy, a mirror) only give bytes. A file goes to the
first endpoint not known to lie this run and moves on to the next when one fails it; the
partial is kept, so the next endpoint resumes it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wandown.hubhttp.urls import host_of

from .fetch import Link
from .job import Expected

# A mirror this many times slower than the best rate seen from another endpoint is left.
SLOW_FACTOR = 10.0
SLOW_AFTER = 5.0  # seconds of a file's transfer on one endpoint before its rate is judged
MIRROR_RETRIES = 2  # an endpoint with another one behind it is not waited on for long
# A mirror whose file stays this slow (bytes a second, all connections) is left even when no
# other endpoint's rate is known yet, unless the truth is known to be slower still: at 300 kB/s
# a 28 GB model takes a day.
MIRROR_FLOOR = 300_000.0


def pace_floor(limit: float | None) -> float:
    """Return the floor a mirror is held to under the user's bandwidth limit (bytes/s)."""
    return MIRROR_FLOOR if limit is None else min(MIRROR_FLOOR, limit / 10)


@dataclass(frozen=True)
class EndpointPlan:
    """The endpoints a run fetches from, in order; `truth` is among them (the last by default).

    `token_homes` are the endpoints whose origins may receive the token (the truth and those
    configured to); the HTTP layer drops it for every other URL.
    """

    order: tuple[str, ...]
    truth: str
    token_homes: tuple[str, ...]

    @classmethod
    def single(cls, endpoint: str) -> EndpointPlan:
        """Return the plan of a one-endpoint run (HF_ENDPOINT): today's behaviour."""
        return cls((endpoint,), endpoint, (endpoint,))


class Sources:
    """The run's endpoints, shared by every download thread; it remembers which ones lied."""

    def __init__(self, plan: EndpointPlan | None = None) -> None:
        self.plan = plan
        self._lock = threading.Lock()
        self._liars: dict[str, str] = {}
        self._best_rate: dict[str, float] = {}

    def for_url(self, url: str) -> FileSource:
        """Return where to fetch the file at the truth's URL url, in order."""
        plan = self.plan
        if plan is None or not url.startswith(plan.truth + "/"):
            return FileSource(self, [(None, url)], url)
        tail = url[len(plan.truth) :]
        return FileSource(self, [(base, base + tail) for base in plan.order], url)

    def token_homes(self, url: str) -> tuple[str, ...]:
        """Return the URLs whose origins may get the token for a file at the truth's URL url."""
        return self.plan.token_homes if self.plan is not None else (url,)

    def is_truth(self, base: str | None) -> bool:
        return base is None or (self.plan is not None and base == self.plan.truth)

    def lied(self, base: str, why: str) -> None:
        """Skip base for the rest of the run: it served bytes that are not the truth's."""
        with self._lock:
            self._liars.setdefault(base, why)

    def trusted(self, base: str | None) -> bool:
        with self._lock:
            return base is None or base not in self._liars

    def note_rate(self, base: str | None, rate: float) -> None:
        """Record a rate a file reached on base, for judging the others."""
        if base is None:
            return
        with self._lock:
            self._best_rate[base] = max(rate, self._best_rate.get(base, 0.0))

    def far_below_others(self, base: str | None, rate: float) -> str | None:
        """Say why rate on base is far below another endpoint's, or None when it is not."""
        with self._lock:
            others = [(r, b) for b, r in self._best_rate.items() if b != base]
        if not others:
            return None
        best, where = max(others)
        if rate * SLOW_FACTOR >= best:
            return None
        return f"{rate / 1e6:.2f} MB/s here, {best / 1e6:.2f} MB/s seen from {host_of(where)}"

    def below_floor(self, base: str | None, rate: float, floor: float) -> str | None:
        """Say why rate on a mirror is below the floor, or None when it is not (or is the truth).

        A truth known to be slower still keeps the mirror: leaving would not help.
        """
        if rate >= floor or self.is_truth(base):
            return None
        with self._lock:
            truth_rate = self._best_rate.get(self.plan.truth) if self.plan is not None else None
        if truth_rate is not None and rate >= truth_rate:
            return None
        return f"{rate / 1e3:.1f} kB/s here, below the {floor / 1e3:.0f} kB/s a mirror must keep"


class FileSource:
    """Where to fetch one file now: the first endpoint that has not failed it, liars skipped."""

    def __init__(
        self, sources: Sources, candidates: Sequence[tuple[str | None, str]], hub_url: str
    ) -> None:
        self.sources = sources
        self.hub_url = hub_url  # the truth's URL of the file: its identity and resume key
        self._candidates = list(candidates)
        self._index = 0
        self._skip_untrusted()

    def _skip_untrusted(self) -> None:
        while self._index < len(self._candidates) - 1 and not self.sources.trusted(self.base):
            self._index += 1

    @property
    def base(self) -> str | None:
        """Return the endpoint in use (None when the file is not on the plan's truth)."""
        return self._candidates[self._index][0]

    @property
    def url(self) -> str:
        """Return the file's URL on the endpoint in use."""
        return self._candidates[self._index][1]

    @property
    def shown(self) -> str:
        """Return the endpoint in use for people: its URL, or the file's host."""
        return self.base or host_of(self.url)

    @property
    def is_truth(self) -> bool:
        return self.sources.is_truth(self.base)

    @property
    def several(self) -> bool:
        """Tell whether the file has more than one endpoint to come from."""
        return len(self._candidates) > 1

    @property
    def has_next(self) -> bool:
        """Tell whether another trusted endpoint is left to fail over to."""
        return any(self.sources.trusted(base) for base, _ in self._candidates[self._index + 1 :])

    def advance(self) -> bool:
        """Move to the next trusted endpoint; False when none is left."""
        for index in range(self._index + 1, len(self._candidates)):
            if self.sources.trusted(self._candidates[index][0]):
                self._index = index
                return True
        return False


class PaceWatch:
    """Watch one pass of a file on its endpoint: note its rate, leave it when far too slow.

    A thread of its own samples `done` (the file's finished bytes), so the connections need
    not know about endpoints. Too slow means, over the last SLOW_AFTER seconds, SLOW_FACTOR
    times below the best rate another endpoint gave this run, or below `floor` on a mirror;
    it is judged only while another endpoint is left to go to; `leave(why)` then ends the pass
    (the partial is kept).
    """

    def __init__(
        self,
        source: FileSource,
        done: Callable[[], int],
        leave: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        every: float = 0.5,
        floor: float = MIRROR_FLOOR,
    ) -> None:
        self.source = source
        self._done = done
        self._leave = leave
        self._clock = clock
        self._every = every
        self._floor = floor
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = clock()
        self._first = done()
        self._samples: deque[tuple[float, int]] = deque([(self._started, self._first)])

    def __enter__(self) -> PaceWatch:
        self._thread = threading.Thread(target=self._run, name="wandown-pace", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.check()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            if self.check():
                return

    def check(self) -> bool:
        """Note the rate so far; leave the endpoint if it is far too slow. True if it left."""
        now, done = self._clock(), self._done()
        elapsed = now - self._started
        if elapsed < 1.0:
            return False
        sources, base = self.source.sources, self.source.base
        sources.note_rate(base, (done - self._first) / elapsed)
        recent = self._recent_rate(now, done)
        if recent is None or self._stop.is_set() or not self.source.has_next:
            return False
        shown = self.source.shown
        why = sources.far_below_others(base, recent)
        if why is not None:
            self._leave(f"{shown} is far slower than another endpoint ({why})")
            return True
        why = sources.below_floor(base, recent, self._floor)
        if why is not None:
            self._leave(f"{shown} is far too slow ({why})")
            return True
        return False

    def _recent_rate(self, now: float, done: int) -> float | None:
        """Return the rate over the last SLOW_AFTER seconds at least; None before that long."""
        samples = self._samples
        samples.append((now, done))
        while len(samples) > 1 and samples[1][0] <= now - SLOW_AFTER:
            samples.popleft()
        since, then = samples[0]
        if now - since < SLOW_AFTER:
            return None
        return (done - then) / (now - since)


def disagreement(expected: Expected, link: Link) -> str | None:
    """Say how an endpoint's answer differs from the truth's file, or None when it agrees."""
    if expected.size is not None and link.size is not None and link.size != expected.size:
        return f"it has {link.size} bytes, the source of truth {expected.size}"
    if expected.kind == "sha256" and link.sha256 and link.sha256 != expected.digest:
        return f"it has sha256 {link.sha256}, the source of truth {expected.digest}"
    return None
