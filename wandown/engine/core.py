"""The engine: files at once, connections per file, one bandwidth limit, one event queue."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping

import urllib3

from wandown.hubhttp.retry import UNLIMITED, RetryPolicy
from wandown.hubhttp.urls import timeout as request_timeout

from . import events as ev
from .cancel import CancelFlag, watched_pool_manager
from .controller import ConnectionBudget
from .download import FileDownload
from .events import Event, EventQueue, Reporter
from .fetch import Resolver
from .job import DownloadJob, Nap, Room, Settings, nap
from .ranges import MIB
from .ratelimit import KIB, RateLimiter, kb_to_rate
from .reads import ReadSizes
from .sources import EndpointPlan, Sources

MAX_BACKOFF = 30.0  # between two tries of one range; a download has time, a listing has not


def no_headers(url: str) -> Mapping[str, str]:
    """Send no extra headers (public repositories)."""
    return {}


class Engine:
    """Download jobs with `jobs` files at once and up to `connections` connections per file.

    Each big file starts with `start_connections` between them all and grows while the total
    rate rises (controller.py); with `adaptive=False` every file runs `connections` at once.

    Every file's events go to `events` (a queue.Queue; one is made if not given). Limits are in
    KB/s with 1 KB = 1024 bytes; None or 0 means unlimited. `headers_for(url)` gives the headers
    for a request (the caller's token for the Hub); Authorization is never sent to another origin
    than the job URL's (or, with `endpoints`, than those the plan lets have it), whatever it
    returns. With `endpoints`, each file is fetched from the first endpoint that has it and
    fails over to the next (sources.py). All threads are daemons and stop promptly on
    `stop()`; use the engine as a context manager to stop and join on exit. A connection
    reads what has arrived, up to `read_size` at a time while its reads come back full and
    all of them together stay within 8 MiB (reads.py).
    """

    def __init__(
        self,
        jobs: int = 2,
        connections: int = 16,
        limit_kb: float | None = None,
        headers_for: Callable[[str], Mapping[str, str]] = no_headers,
        events: EventQueue | None = None,
        pool: urllib3.PoolManager | None = None,
        chunk_size: int = 16 * MIB,
        timeout: float = 30.0,
        *,
        min_chunk: int | None = None,
        small_file: int = 4 * MIB,
        read_size: int = MIB,
        retries: int = 8,
        backoff: float = 0.5,
        min_speed: float = 1024.0,
        stall_window: float = 30.0,
        state_every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        nap: Nap = nap,
        endpoints: EndpointPlan | None = None,
        room: Room | None = None,
        start_connections: int = 4,
        adaptive: bool = True,
    ) -> None:
        if jobs < 1 or connections < 1:
            raise ValueError("jobs and connections must be at least 1")
        self.events: EventQueue = events if events is not None else queue.Queue()
        self.settings = Settings(
            connections=connections,
            chunk_size=chunk_size,
            min_chunk=min_chunk or max(64 * 1024, chunk_size // 16),
            small_file=small_file,
            reads=ReadSizes(read_size),
            timeout=request_timeout(timeout),
            retries=retries,
            retry=RetryPolicy(
                max_attempts=retries + 1,
                budget=UNLIMITED,
                first_backoff=backoff,
                max_backoff=MAX_BACKOFF,
                clock=clock,
                sleep=lambda seconds, flag: nap(flag, seconds),
            ),
            min_speed=min_speed,
            stall_window=stall_window,
            state_every=state_every,
        )
        self._headers_for = headers_for
        self.sources = Sources(endpoints)
        self._room = room
        self._clock = clock
        self._own_pool = pool is None
        # Our own pool's connections can be cut by a cancel even before the server answers;
        # with a pool from the caller, a request waiting for its answer waits for its timeout.
        self.pool = pool or watched_pool_manager(
            num_pools=16, maxsize=jobs * connections + jobs, block=False
        )
        self.limiter = RateLimiter(kb_to_rate(limit_kb))
        self.budget = ConnectionBudget(connections, start=start_connections) if adaptive else None
        # Small files are bound by round trips, not bandwidth: they get a lane of their own so a
        # model's tokenizer files do not queue behind two multi-GB downloads.
        self._lanes: dict[str, queue.Queue[DownloadJob | None]] = {
            "large": queue.Queue(),
            "small": queue.Queue(),
        }
        self._lane_width = {"large": jobs, "small": max(2, min(connections, 4))}
        self._lane_threads: dict[str, int] = {"large": 0, "small": 0}
        self._stop = threading.Event()
        self._lock = threading.Condition()
        self._cancels: dict[str, CancelFlag] = {}
        self._reporters: dict[str, Reporter] = {}
        self._results: dict[str, Event] = {}
        self._threads: list[threading.Thread] = []

    # -- control, from any thread ------------------------------------------------------------

    def submit(self, job: DownloadJob) -> None:
        """Queue job; its 'pending' event is published at once."""
        with self._lock:
            if self._stop.is_set():
                raise RuntimeError("the engine is stopped")
            earlier = self._reporters.get(job.key)
            # The final event is out before its worker records the result: a view that
            # restarts the file on seeing it must not be told the file is still queued.
            if earlier is not None and not earlier.finished:
                raise ValueError(f"{job.key} is already queued")
            self._results.pop(job.key, None)
            self._cancels[job.key] = CancelFlag()
            reporter = Reporter(job.key, self.events)
            reporter.total = job.size
            self._reporters[job.key] = reporter
            lane = "small" if self.settings.is_small(job.size) else "large"
            if self._lane_threads[lane] < self._lane_width[lane]:
                self._lane_threads[lane] += 1
                thread = threading.Thread(
                    target=self._dispatch,
                    args=(self._lanes[lane],),
                    name=f"wandown-{lane}-{self._lane_threads[lane]}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
        reporter.publish(ev.PENDING)
        self._lanes[lane].put(job)

    def cancel(self, key: str) -> None:
        """Stop one file, keeping its partial for a later resume."""
        with self._lock:
            flag = self._cancels.get(key)
        if flag is not None:
            flag.set()

    @property
    def limit_kb(self) -> float | None:
        """Return the shared limit in KB/s (1 KB = 1024 bytes), None when unlimited."""
        rate = self.limiter.rate
        return rate / KIB if rate else None

    def set_limit(self, limit_kb: float | None) -> None:
        """Change the shared limit (KB/s, 1 KB = 1024 bytes; None or 0 = unlimited) at once."""
        self.limiter.set_rate(kb_to_rate(limit_kb))

    def stop(self) -> None:
        """Stop everything promptly; partials are kept. Use wait() to join."""
        with self._lock:
            self._stop.set()
            flags = list(self._cancels.values())
        for flag in flags:
            flag.set()
        for lane, count in self._lane_threads.items():
            for _ in range(count):
                self._lanes[lane].put(None)

    def wait(self, timeout: float | None = None) -> dict[str, Event]:
        """Block until every submitted job has a final event (or timeout); return them by key."""
        with self._lock:
            self._lock.wait_for(lambda: len(self._results) >= len(self._cancels), timeout)
            return dict(self._results)

    def close(self, timeout: float = 5.0) -> None:
        """Stop, join the threads (waiting timeout seconds at most) and close the connections.

        Every thread stops within about a second of stop(); the bound only keeps a quit from
        hanging on a bug, and the threads are daemons either way.
        """
        self.stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._own_pool:
            self.pool.clear()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the worker side ---------------------------------------------------------------------

    def _dispatch(self, lane: queue.Queue[DownloadJob | None]) -> None:
        while True:
            job = lane.get()
            if job is None:
                return
            with self._lock:
                flag = self._cancels[job.key]
                reporter = self._reporters[job.key]
            held = None if flag.is_set() else self._wait_for_room(job, flag, reporter)
            if held is not None:
                final = held
            elif flag.is_set():
                final = reporter.publish(ev.CANCELLED, message="cancelled before it started")
            else:
                source = self.sources.for_url(job.url)
                resolver = Resolver(
                    self.pool,
                    source.url,
                    self._headers_for,
                    self.settings.timeout,
                    self.sources.token_homes(job.url),
                )
                download = FileDownload(
                    job,
                    self.settings,
                    self.pool,
                    self.limiter,
                    resolver,
                    reporter,
                    flag,
                    source,
                    self.budget,
                )
                try:
                    final = download.run()
                except Exception as error:  # a bug must end the file, not hang wait()
                    final = reporter.publish(ev.FAILED, message=f"internal error: {error!r}")
            with self._lock:
                if self._reporters.get(job.key) is reporter:  # not already queued again
                    self._results[job.key] = final
                self._lock.notify_all()

    def _wait_for_room(
        self, job: DownloadJob, flag: CancelFlag, reporter: Reporter
    ) -> Event | None:
        """Hold a file back while its disk is under the reserve; None once it may start.

        The lane waits with it, so no new file starts on a full disk; a file that waited
        disk_wait seconds in vain fails with the reason, and a cancel ends the wait at once.
        """
        if self._room is None:
            return None
        reason = self._room(job.dest)
        if reason is None:
            return None
        deadline = self._clock() + self.settings.disk_wait
        reporter.publish(ev.WAITING_DISK, message=reason)
        while reason is not None:
            if flag.is_set():
                return reporter.publish(ev.CANCELLED, message="cancelled while waiting for space")
            if self._clock() >= deadline:
                return reporter.publish(
                    ev.FAILED, message=f"not started: {reason}; free space and run again"
                )
            flag.wait(min(self.settings.disk_poll, max(0.0, deadline - self._clock())))
            reason = self._room(job.dest)
        reporter.publish(ev.PENDING, message="")
        return None
