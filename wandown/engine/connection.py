"""The requests of one file: each connection's GETs, reads and writes, and when to retry them."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import urllib3

from wandown.errors import DownloadError
from wandown.hubhttp.urls import host_of
from wandown.huburl import same_origin

from .cancel import CancelFlag, interrupt, watching
from .events import Reporter
from .fetch import (
    Cancelled,
    LinkExpired,
    RangeIgnored,
    RemoteChanged,
    Resolver,
    Transient,
    parse_content_range,
    read_some,
    reason,
    status_problem,
)
from .job import DownloadJob, Settings
from .ranges import Assignment, RangePlanner
from .ratelimit import RateLimiter
from .watchdog import SpeedWatchdog, TooSlow

T = TypeVar("T")


class DiskFull(DownloadError):
    """The disk filled up while writing a partial download."""

    def __init__(self, part: Path, resumable: bool = True) -> None:
        self.part = part
        self.resumable = resumable
        after = (
            "the partial download is kept and will resume"
            if resumable
            else "the partial download could not be kept for resuming; the next run starts over"
        )
        super().__init__(
            f"the disk is full while writing {part.parent.parent}: free some space and run "
            f"again; {after}"
        )


@dataclass(eq=False)
class Slot:
    """One connection thread as its file's watcher sees it, and the watcher's wishes for it.

    The thread alone writes `received` and `busy`; the watcher sets `retire` (end at the next
    read, handing the rest of the range back to the planner: a count that drops must drop
    now, or the controller would judge the fewer connections while the old ones still run)
    and calls `ask_reopen` (cut the response now and continue the range on a new connection:
    a CDN may route that one to another, faster edge).
    """

    number: int
    received: int = 0  # bytes written by this connection
    busy: bool = False  # it holds a range
    retire: bool = False
    reopen: bool = False
    _response: urllib3.BaseHTTPResponse | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hold(self, response: urllib3.BaseHTTPResponse) -> None:
        """Note the response being read (a new request clears an earlier reopen wish)."""
        with self._lock:
            self._response = response
            self.reopen = False

    def release(self) -> None:
        """Forget the response before its connection goes back to the pool."""
        with self._lock:
            self._response = None

    def ask_reopen(self) -> None:
        """Cut the response in flight; the thread then asks for the rest on a new socket."""
        with self._lock:
            if self._response is not None:
                self.reopen = True
                interrupt(self._response)


def write_at(fd: int, data: bytes | memoryview, offset: int, part: Path) -> None:
    """pwrite all of data at offset; a full disk becomes a clear DownloadError."""
    view = memoryview(data)
    while view:
        try:
            written = os.pwrite(fd, view, offset)
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(part) from error
            raise DownloadError(f"cannot write {part}: {error.strerror or error}") from error
        view = view[written:]
        offset += written


class Connections:
    """One file's requests: what its connections share (the failure, the abort flag).

    `run(fd, planner, single, slot)` is a connection's thread: it takes ranges from the planner
    and fetches them until none is left or its slot is retired. The first failure of any
    connection aborts the others.
    """

    def __init__(
        self,
        job: DownloadJob,
        part: Path,
        settings: Settings,
        pool: urllib3.PoolManager,
        limiter: RateLimiter,
        resolver: Resolver,
        reporter: Reporter,
        cancel: CancelFlag,
    ) -> None:
        self.job = job
        self.part = part
        self.settings = settings
        self.pool = pool
        self.limiter = limiter
        self.resolver = resolver
        self.reporter = reporter
        self.cancel = cancel
        self._lock = threading.Lock()
        # One pwrite at a time: Linux file systems take the inode's lock for a buffered write,
        # and many writers spin on it in the kernel (rwsem_spin_on_owner) instead of sleeping.
        self._write_lock = threading.Lock()
        self.failure: BaseException | None = None
        self._abort = CancelFlag()  # this pass failed: its other connections stop too

    def start_pass(self) -> None:
        """Forget the previous pass's failure before connections start again."""
        self.failure = None
        self._abort.clear()

    def stopping(self) -> bool:
        """Tell whether the file was cancelled or this pass failed."""
        return self.cancel.is_set() or self._abort.is_set()

    def fail(self, error: BaseException) -> None:
        """Record the pass's first failure and stop its other connections."""
        with self._lock:
            if self.failure is None:
                self.failure = error
        self._abort.set()

    def run(self, fd: int, planner: RangePlanner, single: bool, slot: Slot) -> None:
        """Take ranges from the planner and fetch them until none is left or slot is retired."""
        with self.settings.reads.joined():
            self._run(fd, planner, single, slot)

    def _run(self, fd: int, planner: RangePlanner, single: bool, slot: Slot) -> None:
        failures = 0
        try:
            while not self.stopping() and not slot.retire:
                work = planner.next()
                if work is None:
                    return
                slot.busy = True
                try:
                    while work.cursor < work.end and not self.stopping() and not slot.retire:
                        before = work.cursor
                        problem = self._attempt(fd, planner, work, single, slot)
                        if work.cursor > before:
                            failures = 0
                        if problem is not None and not slot.retire:  # given back: no retry
                            failures += 1
                            self._recover(problem, failures)
                finally:
                    slot.busy = False
                    planner.finish(work)
        except Cancelled:
            self._abort.set()
        except (DownloadError, RangeIgnored) as error:
            self.fail(error)
        except Exception as error:  # a bug must end the file, not hang it
            self.fail(DownloadError(f"{self.job.dest.name}: internal error: {error!r}"))

    def retrying(self, action: Callable[[], T]) -> T:
        """Run action, retrying transient failures with backoff (Hub lookups, sizeless files)."""
        failures = 0
        while True:
            if self.stopping():
                raise Cancelled
            try:
                with watching(self.cancel):
                    return action()
            except (Transient, TooSlow, LinkExpired) as problem:
                failures += 1
                self._recover(problem, failures)

    def _attempt(
        self, fd: int, planner: RangePlanner, work: Assignment, single: bool, slot: Slot
    ) -> Exception | None:
        """Make one request for work; return why it failed, or None if it brought new bytes.

        A request that ends without error yet adds no byte (a 206 whose range is empty) is a
        failure too: counted like any other, it cannot make the connection ask again forever.
        """
        before = work.cursor
        try:
            self._fetch_range(fd, planner, work, single, slot)
        except (Transient, TooSlow, LinkExpired) as problem:
            if slot.reopen and not self.stopping():
                return None  # cut on purpose: the rest of the range goes out on a new socket
            return problem
        if work.cursor > before or self.stopping() or slot.retire:
            return None
        return Transient(f"the server sent no bytes for bytes {before}-{work.end - 1}")

    def _recover(self, problem: Exception, failures: int) -> None:
        """Wait as the retry policy says before trying again, or give up."""
        if self.stopping():
            raise Cancelled  # a cut connection is not a failure of the server
        policy = self.settings.retry
        asked = problem.wait if isinstance(problem, Transient) else None
        wait = policy.next_wait(failures, 0.0, asked)
        if wait is None:
            if asked is not None and asked > policy.max_server_wait:
                raise DownloadError(
                    f"{self.job.dest.name}: giving up: {problem}, and the server asks to wait "
                    f"{asked:.0f} s; try again later"
                )
            raise DownloadError(
                f"{self.job.dest.name}: giving up after {self.settings.retries} retries: {problem}"
            )
        if isinstance(problem, LinkExpired):
            stale = str(problem)
            self.retrying(lambda: self.resolver.refresh(stale))
            return
        self.reporter.progress(self.reporter.done, message=f"{problem}; retrying")
        policy.pause(wait, self.cancel, self.stopping)
        if self.stopping():
            raise Cancelled

    def _fetch_range(
        self, fd: int, planner: RangePlanner, work: Assignment, single: bool, slot: Slot
    ) -> None:
        """One GET for bytes [cursor, end) of the work; write what arrives."""
        url = self._data_url()
        size = planner.size
        first = work.cursor
        extra = {}
        if not (single and first == 0):
            extra["Range"] = f"bytes={first}-{work.end - 1}"
        with self._get(url, extra) as response:
            skip = 0
            if response.status == 206:
                answered = self._answered_range(response, first, work.end - 1)
                if answered[2] is not None and answered[2] != size:
                    raise RemoteChanged(
                        f"{self.job.dest.name}: the server now has {answered[2]} bytes, "
                        f"expected {size}; refresh the file list and try again"
                    )
                stop = answered[1] + 1
            elif response.status == 200:
                if not single:
                    raise RangeIgnored
                length = response.headers.get("Content-Length")
                if length and length.isdigit() and int(length) != size:
                    raise RemoteChanged(
                        f"{self.job.dest.name}: the server now sends {length} bytes, expected "
                        f"{size}; refresh the file list and try again"
                    )
                # One stream from byte 0: skip what the partial already has.
                skip, stop = first, size
            else:
                raise self._refused(response, url)
            slot.hold(response)
            try:
                self._read_body(fd, planner, work, response, skip, stop, slot)
            finally:
                slot.release()

    def _data_url(self) -> str:
        link = self.resolver.link
        assert link is not None
        return link.data_url

    def _refused(self, response: urllib3.BaseHTTPResponse, url: str) -> Exception:
        """Say what a GET's unusable answer means: an expired CDN link, or a failure."""
        if response.status == 403 and not same_origin(url, self.resolver.url):
            return LinkExpired(url)
        return status_problem(
            response,
            url,
            self.resolver.url,
            f"downloading {self.job.dest.name}",
            self.resolver.sends_token(),
        )

    @staticmethod
    def _answered_range(
        response: urllib3.BaseHTTPResponse, first: int, last: int
    ) -> tuple[int, int, int | None]:
        """Return a 206's Content-Range; Transient unless it starts where asked and is not empty."""
        header = response.headers.get("Content-Range")
        answered = parse_content_range(header)
        if answered is None:
            raise Transient(
                f"the server answered Content-Range {header!r} for bytes {first}-{last}, "
                "which is not a byte range"
            )
        if answered[0] != first or answered[1] < answered[0]:
            raise Transient(
                f"the server answered bytes {answered[0]}-{answered[1]} for bytes {first}-{last}"
            )
        return answered

    @contextlib.contextmanager
    def _get(self, url: str, extra: dict[str, str]) -> Iterator[urllib3.BaseHTTPResponse]:
        """GET url for the block; a network error in it is Transient, or Cancelled if asked."""
        response = self._request(url, extra)
        try:
            yield response
        except (urllib3.exceptions.HTTPError, OSError) as error:
            if self.cancel.is_set():
                raise Cancelled from error
            raise Transient(reason(error)) from error
        finally:
            self._drop(response)

    def _request(self, url: str, extra: dict[str, str]) -> urllib3.BaseHTTPResponse:
        try:
            with watching(self.cancel):
                response = self.pool.request(
                    "GET",
                    url,
                    headers=self.resolver.headers(url, extra),
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    timeout=self.settings.timeout,
                )
        except urllib3.exceptions.HTTPError as error:
            if self.cancel.is_set():
                raise Cancelled from error
            raise Transient(f"cannot reach {host_of(url)}: {reason(error)}") from error
        # Either flag cuts the response when set, at once if it already is.
        self.cancel.add(response)
        self._abort.add(response)
        return response

    def _drop(self, response: urllib3.BaseHTTPResponse) -> None:
        self.cancel.discard(response)
        self._abort.discard(response)
        # A body read to its end lets the connection go back to the pool; any other is closed,
        # or the next request on it would read the rest of this one.
        if not response.closed and response.length_remaining != 0:
            response.close()
        elif not response.closed:
            # An empty body nobody read (a 206 refused for its Content-Range): reading its
            # end is what frees http.client's connection for the next request on it.
            with contextlib.suppress(urllib3.exceptions.HTTPError, OSError):
                response.read()
        response.release_conn()

    def _read_body(
        self,
        fd: int,
        planner: RangePlanner,
        work: Assignment,
        response: urllib3.BaseHTTPResponse,
        skip: int,
        stop: int,
        slot: Slot,
    ) -> None:
        settings = self.settings
        watchdog = SpeedWatchdog(settings.min_speed, settings.stall_window)
        while skip > 0:  # a server that ignores Range: read past what we have
            data = response.read(min(skip, settings.reads.most))
            if not data:
                raise Transient("the server closed the connection early (short body)")
            skip -= len(data)
        reads = settings.reads.response()
        while work.cursor < min(work.end, stop) and not slot.retire:
            ask = min(reads.size, work.end - work.cursor, stop - work.cursor)
            want = self._allowance(ask, watchdog)
            got = self._write_next(fd, response, want, work.cursor)
            if not got:
                raise Transient("the server closed the connection early (short body)")
            reads.after(want, got)
            planner.advance(work, got)
            slot.received += got
            watchdog.feed(got)

    def _write_next(
        self, fd: int, response: urllib3.BaseHTTPResponse, want: int, offset: int
    ) -> int:
        """Read what has arrived (up to want bytes), write it at offset; return how much.

        The bytes are dropped on return, before the next read allocates its own: a connection
        never holds two reads at once, which kept 32 connections at twice the read memory.
        """
        data = read_some(response, want)
        if data:
            with self._write_lock:
                write_at(fd, data, offset, self.part)
        return len(data)

    def _allowance(self, want: int, watchdog: SpeedWatchdog) -> int:
        """Wait until the shared limit allows up to want bytes; the wait is not a stall."""
        if self.limiter.rate is None:
            return want
        started = time.monotonic()
        allowed = self.limiter.acquire(want, self.stopping)
        watchdog.pause(time.monotonic() - started)
        if allowed == 0:
            raise Cancelled
        return allowed

    def stream_whole(self, fd: int) -> int:
        """One GET of the whole file into fd from byte 0; return how many bytes arrived."""
        os.ftruncate(fd, 0)
        url = self._data_url()
        settings = self.settings
        with self._get(url, {}) as response, settings.reads.joined():
            if response.status != 200:
                raise self._refused(response, url)
            watchdog = SpeedWatchdog(settings.min_speed, settings.stall_window)
            received = 0
            reads = settings.reads.response()
            while True:
                want = self._allowance(reads.size, watchdog)
                if self.stopping():
                    raise Cancelled
                got = self._write_next(fd, response, want, received)
                if not got:
                    break
                reads.after(want, got)
                received += got
                watchdog.feed(got)
                self.reporter.progress(received)
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) != received:
                raise Transient("the server closed the connection early (short body)")
            return received
