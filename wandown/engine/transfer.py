"""Fetch one file: connections over byte ranges, hashing alongside, verify, rename into place."""

from __future__ import annotations

import contextlib
import errno
import os
import random
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import urllib3

from wandown import fsutil
from wandown.digests import file_digest
from wandown.errors import DownloadError, WandownError

from . import events as ev
from .events import Event, Reporter
from .fetch import (
    CancelFlag,
    Cancelled,
    Link,
    LinkExpired,
    RangeIgnored,
    RemoteChanged,
    Resolver,
    Transient,
    origin,
    parse_content_range,
    reason,
    status_problem,
    watching,
)
from .hashing import PrefixHasher
from .partial import (
    FileLock,
    Holder,
    PartialPaths,
    PartialState,
    WorkingFolder,
    load_state,
    save_state,
)
from .ranges import Assignment, RangePlanner, RangeSet
from .ratelimit import RateLimiter
from .watchdog import SpeedWatchdog, TooSlow

T = TypeVar("T")

Nap = Callable[[threading.Event, float], object]


def nap(flag: threading.Event, seconds: float) -> None:
    """Sleep for seconds, waking at once when flag is set (the engine's default pause)."""
    flag.wait(seconds)


@dataclass(frozen=True)
class DownloadJob:
    """One file to fetch from the Hub and put at dest, verified.

    `url` is the Hub's /resolve/ URL; `size`, `sha256` (LFS files) and `blob_sha1` (small files:
    git's sha1 of b"blob <size>\\0" + content) are what the metadata promised. Missing values are
    taken from the Hub's answer; a value that differs from the Hub's fails the file as changed.
    """

    key: str
    url: str
    dest: Path
    size: int | None
    sha256: str | None
    blob_sha1: str | None = None
    commit: str | None = None


@dataclass(frozen=True)
class Settings:
    """How hard and how patiently the engine works; one instance shared by all files."""

    connections: int
    chunk_size: int
    min_chunk: int
    small_file: int
    read_size: int
    timeout: urllib3.Timeout
    retries: int
    backoff: float
    min_speed: float
    stall_window: float
    state_every: float
    clock: Callable[[], float] = time.monotonic  # backoff deadlines; tests pass a fake clock
    nap: Nap = nap  # ...and a pause that advances it
    busy_timeout: float = field(default_factory=lambda: _env_seconds("WANDOWN_BUSY_TIMEOUT", 600))

    def is_small(self, size: int | None) -> bool:
        """Tell whether a file is small: one plain GET, in the lane that never waits on big ones."""
        return size is not None and size <= self.small_file


@dataclass(frozen=True)
class Expected:
    """The file as the job and the Hub agree it must be."""

    size: int | None
    kind: str | None  # "sha256", "blob_sha1" or None (size check only)
    digest: str | None
    commit: str | None


def _agree(job: DownloadJob, what: str, promised: T | None, served: T | None) -> T | None:
    if promised is not None and served is not None and promised != served:
        raise RemoteChanged(
            f"{job.dest.name}: the Hub now serves another version ({what} {served}, "
            f"expected {promised}); refresh the file list and try again"
        )
    return promised if promised is not None else served


def expected_file(job: DownloadJob, link: Link) -> Expected:
    """Combine the job's promise with the Hub's answer; refuse when they disagree."""
    size = _agree(job, "size", job.size, link.size)
    commit = job.commit or link.commit
    sha256 = _agree(job, "sha256", job.sha256 and job.sha256.lower(), link.sha256)
    if sha256 is not None:
        return Expected(size, "sha256", sha256, commit)
    blob = _agree(job, "git sha1", job.blob_sha1 and job.blob_sha1.lower(), link.blob_sha1)
    return Expected(size, "blob_sha1" if blob is not None else None, blob, commit)


def _env_seconds(name: str, default: float) -> float:
    """Read a number of seconds from the environment (tests shorten waits this way)."""
    try:
        return max(0.0, float(os.environ.get(name, default)))
    except ValueError:
        return default


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


class FileDownload:
    """Everything about fetching one job; `run()` returns its final event."""

    def __init__(
        self,
        job: DownloadJob,
        settings: Settings,
        pool: urllib3.PoolManager,
        limiter: RateLimiter,
        resolver: Resolver,
        reporter: Reporter,
        cancel: CancelFlag,
    ) -> None:
        self.job = job
        self.settings = settings
        self.pool = pool
        self.limiter = limiter
        self.resolver = resolver
        self.reporter = reporter
        self.cancel = cancel
        self.paths = PartialPaths.for_dest(job.dest)
        self._lock = threading.Lock()
        self._failure: BaseException | None = None
        self._abort = CancelFlag()  # this pass failed: its other connections stop too
        self._part_identity: tuple[int, int] | None = None  # the part file this run verified

    # -- the whole job -------------------------------------------------------------------

    def run(self) -> Event:
        """Fetch, verify and place the file; never raises for expected failures."""
        name = self.job.dest.name
        folder = WorkingFolder(self.paths.folder)
        try:
            self._prepare_folder(folder)
            try:
                return self._run_locked()
            finally:
                # Removed only when empty: a part or state to resume keeps it.
                folder.leave(tidy=True)
        except Cancelled:
            return self.reporter.publish(ev.CANCELLED, message="stopped; the partial is kept")
        except DownloadError as error:
            return self.reporter.publish(ev.FAILED, message=str(error))
        except OSError as error:
            detail = error.strerror or str(error)
            where = error.filename or self.paths.folder
            return self.reporter.publish(ev.FAILED, message=f"{name}: {detail}: {where}")

    def _run_locked(self) -> Event:
        lock = FileLock(self.paths.lock)
        if not self._take_lock(lock):
            size = self.job.dest.stat().st_size
            self.reporter.total = size
            return self.reporter.publish(
                ev.COMPLETE, size, message="fetched by another wandown process"
            )
        try:
            message = self._download()
        finally:
            # The lock file stays only beside something to resume.
            leftover = self.paths.part.exists() or self.paths.state.exists()
            lock.release(remove=not leftover)
        return self.reporter.publish(ev.COMPLETE, self.reporter.done, message=message)

    def _prepare_folder(self, folder: WorkingFolder) -> None:
        """Make and hold the hidden folder; it cannot vanish until folder.leave()."""
        dest = self.job.dest
        self._refuse_what_is_in_the_way()
        try:
            folder.enter()
        except WandownError as error:
            raise DownloadError(str(error)) from error
        except OSError as error:
            raise DownloadError(
                f"cannot write into {dest.parent}: {error.strerror or error}"
            ) from error

    def _refuse_what_is_in_the_way(self) -> None:
        """Refuse a destination that is a folder, a link or a device: never write through it.

        The hidden working folder must be a real folder too: through a link, the part files
        would be written wherever it points (a hub, say).
        """
        folder = self.paths.folder
        if folder.is_symlink():
            raise DownloadError(
                f"{folder} is a link (to {os.readlink(folder)}); wandown keeps its partial "
                "downloads in a real folder there. Remove the link and run again"
            )
        dest = self.job.dest
        try:
            mode = os.lstat(dest).st_mode
        except OSError:
            return  # nothing there, or no folder yet: the folder's preparation says why
        if stat.S_ISDIR(mode):
            raise DownloadError(f"cannot save {dest}: a folder is in the way")
        if stat.S_ISLNK(mode):
            raise DownloadError(
                f"cannot save {dest}: a link is in the way (to {os.readlink(dest)}); remove it "
                "and run again"
            )
        if not stat.S_ISREG(mode):
            raise DownloadError(f"cannot save {dest}: something that is not a file is in the way")

    def _take_lock(self, lock: FileLock) -> bool:
        """Lock the file against other processes; False if one of them finished it meanwhile.

        A holder that stops showing signs of life (stopped with Ctrl-Z, hung) is waited for
        only busy_timeout seconds; its lock is never taken from it, so there are never two
        writers.
        """
        before = _identity(self.job.dest)
        if self._try_lock(lock):
            return True
        shown = None
        while not self._try_lock(lock):
            holder = lock.holder()
            message = busy_message(holder)
            if message != shown:
                self.reporter.publish(ev.BUSY, message=message)
                shown = message
            if holder is not None and holder.idle > self.settings.busy_timeout:
                raise DownloadError(
                    f"{self.job.dest.name}: {holder.describe()} holds its lock but has shown no "
                    f"progress for {idle_text(holder.idle)} (stopped or hung?); continue or end "
                    "that process, then run again"
                )
            if self.cancel.wait(0.2):
                raise Cancelled
        after = _identity(self.job.dest)
        if after is not None and after != before:
            lock.release(remove=True)
            return False
        return True

    def _try_lock(self, lock: FileLock) -> bool:
        try:
            return lock.try_acquire()
        except WandownError as error:
            raise DownloadError(str(error)) from error
        except OSError as error:
            raise DownloadError(
                f"cannot write into {self.paths.folder}: {error.strerror or error}"
            ) from error

    def _download(self) -> str:
        """Fetch and place the file; return what the user should know beyond 'complete'."""
        link = self._retrying(self.resolver.resolve)
        expected = expected_file(self.job, link)
        self.reporter.total = expected.size
        identity = PartialState(
            url=self.job.url,
            size=expected.size,
            sha256=expected.digest if expected.kind == "sha256" else None,
            blob_sha1=expected.digest if expected.kind == "blob_sha1" else None,
            commit=expected.commit,
        )
        saved = load_state(self.paths.state)
        if saved is not None and saved.same_remote(identity) and self.paths.part.exists():
            identity.done = saved.done
        else:
            self.paths.discard()
        for attempt in (1, 2):
            self.reporter.publish(ev.DOWNLOADING, identity.done.total())
            self._save_first(identity)
            digest = self._fetch(identity, expected)
            if expected.kind is None or digest == expected.digest:
                return self._place(expected)
            self.paths.discard()
            identity.done = RangeSet()
            problem = (
                f"{expected.kind} mismatch for {self.job.dest.name}: the Hub says "
                f"{expected.digest}, the download has {digest}"
            )
            if attempt == 2:
                raise DownloadError(f"{problem} (twice); the bad download was removed")
            self.reporter.publish(ev.DOWNLOADING, 0, message=f"{problem}; fetching again")

    def _save_first(self, state: PartialState) -> None:
        """Write the state before any byte of data, so a disk that fills up can still resume."""
        try:
            save_state(self.paths.state, state)
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DownloadError(
                    f"the disk is full in {self.job.dest.parent}: no room to start "
                    f"{self.job.dest.name}; free some space and run again"
                ) from error
            raise DownloadError(
                f"cannot write {self.paths.state}: {error.strerror or error}"
            ) from error
        except WandownError as error:
            raise DownloadError(str(error)) from error

    def _place(self, expected: Expected) -> str:
        """Move the verified part to the destination, never replacing what appeared there."""
        part, dest = self.paths.part, self.job.dest
        if _identity_of_name(part) != self._part_identity:
            raise DownloadError(
                f"{part} was replaced while {dest.name} was downloading; not placing it. Remove "
                "it and run again"
            )
        try:
            fsutil.place_new(part, dest)
        except FileExistsError:
            return self._appeared(expected)
        except OSError as error:
            raise DownloadError(
                f"cannot put {dest} in place: {error.strerror or error}; the verified "
                f"download stays in {part}"
            ) from error
        with contextlib.suppress(FileNotFoundError):
            self.paths.state.unlink()
        return ""

    def _appeared(self, expected: Expected) -> str:
        """A file appeared at the destination during the download: keep it; drop ours if equal."""
        part, dest = self.paths.part, self.job.dest
        if expected.kind is not None and _same_file(dest, expected, self.cancel):
            self.paths.discard()
            return (
                f"{dest.name} appeared while downloading and matches the Hub's; kept it and "
                "dropped the download"
            )
        raise DownloadError(
            f"{dest} appeared while downloading and is not the Hub's file (or is still being "
            f"written); left it as it is. The verified download is kept at {part}: move it "
            "there yourself to use it, or delete it"
        )

    # -- one pass over the bytes -------------------------------------------------------------

    def _fetch(self, state: PartialState, expected: Expected) -> str | None:
        """Fill the part file, hashing alongside; return its digest (None if unhashed)."""
        try:
            fd = fsutil.open_private_file(self.paths.part)
        except fsutil.UnsafePathError as error:
            # Our bookkeeping for it is worthless now; the thing at the part's name is not ours.
            with contextlib.suppress(FileNotFoundError):
                self.paths.state.unlink()
            raise DownloadError(f"{self.job.dest.name}: {error}") from error
        self._part_identity = _identity_of_fd(fd)
        try:
            size = expected.size
            if size is None:
                return self._fetch_unknown_size(fd, expected)
            if os.fstat(fd).st_size != size:
                os.ftruncate(fd, size)
            single = self.settings.is_small(size)
            try:
                digest = self._fetch_known_size(fd, state, expected, single)
            except RangeIgnored:
                # The server sends whole files only: keep the finished prefix, stream the rest.
                state.done = RangeSet([(0, state.done.prefix_end())])
                self.reporter.publish(
                    ev.DOWNLOADING, message="the server ignores byte ranges; using one stream"
                )
                digest = self._fetch_known_size(fd, state, expected, single=True)
            os.fsync(fd)
            return digest
        finally:
            os.close(fd)

    def _fetch_known_size(
        self, fd: int, state: PartialState, expected: Expected, single: bool
    ) -> str | None:
        size = expected.size
        assert size is not None
        settings = self.settings
        self._failure = None
        self._abort.clear()
        if single:
            planner = RangePlanner(size, state.done, 1, max(size, 1), max(size, 1))
        else:
            planner = RangePlanner(
                size, state.done, settings.connections, settings.chunk_size, settings.min_chunk
            )
        state.done = planner.done
        hash_stop = threading.Event()
        hasher = None
        if expected.kind is not None:
            hasher = PrefixHasher(
                fd, expected.kind, size, planner.done.prefix_end, planner.changed, hash_stop
            )
        count = 1 if single else settings.connections
        workers: list[threading.Thread] = []
        try:
            try:
                if hasher is not None:
                    hasher.start()
                for i in range(count):
                    worker = threading.Thread(
                        target=self._connection,
                        args=(fd, planner, single),
                        name=f"wandown-conn-{i}",
                        daemon=True,
                    )
                    worker.start()
                    workers.append(worker)
            except RuntimeError as error:  # "can't start new thread": out of threads or memory
                self._fail(
                    DownloadError(
                        f"{self.job.dest.name}: cannot start a download thread ({error}); close "
                        "other programs or lower the connections and run again"
                    )
                )
            # Even after a failure to start, the workers that did start must end before the
            # caller closes the file descriptor they write to.
            self._watch(workers, planner, state)
            if self._failure is not None:
                raise self._failure
            if self.cancel.is_set():
                raise Cancelled
            if not planner.done.covers(size):
                raise DownloadError(f"{self.job.dest.name}: the download stopped short")
            self.reporter.publish(ev.VERIFYING, size)
            if hasher is None:
                return None
            # Re-hashing a resumed prefix can take minutes: stay cancellable meanwhile.
            while not hasher.wait(0.1):
                if self.cancel.is_set():
                    raise Cancelled
            digest = hasher.result()
            if digest is None:
                raise DownloadError(
                    f"cannot read back {self.paths.part} to verify it: {hasher.error}"
                )
            return digest
        finally:
            hash_stop.set()
            if hasher is not None and hasher.started:
                hasher.wait()

    def _watch(
        self, workers: list[threading.Thread], planner: RangePlanner, state: PartialState
    ) -> None:
        """Report progress and save the state until every connection has ended."""
        last_saved = time.monotonic()
        while any(worker.is_alive() for worker in workers):
            self.cancel.wait(0.1)
            self.reporter.progress(planner.done_bytes())
            if time.monotonic() - last_saved >= self.settings.state_every:
                self._save(planner, state)
                last_saved = time.monotonic()
        if not self._save(planner, state) and isinstance(self._failure, DiskFull):
            self._failure = DiskFull(self.paths.part, resumable=False)
        self.reporter.progress(planner.done_bytes())

    def _save(self, planner: RangePlanner, state: PartialState) -> bool:
        """Save the finished ranges; False if they could not be saved."""
        snapshot = PartialState(
            state.url,
            state.size,
            state.sha256,
            state.blob_sha1,
            state.commit,
            RangeSet(planner.snapshot()),
        )
        try:
            save_state(self.paths.state, snapshot)
        except (OSError, WandownError):  # a full disk must not hide the real error
            return False
        return True

    # -- one connection ----------------------------------------------------------------------

    def _stopping(self) -> bool:
        return self.cancel.is_set() or self._abort.is_set()

    def _fail(self, error: BaseException) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = error
        self._abort.set()

    def _connection(self, fd: int, planner: RangePlanner, single: bool) -> None:
        """Take ranges from the planner and fetch them until none is left."""
        failures = 0
        try:
            while not self._stopping():
                work = planner.next()
                if work is None:
                    return
                try:
                    while work.cursor < work.end and not self._stopping():
                        before = work.cursor
                        problem = self._attempt(fd, planner, work, single)
                        if work.cursor > before:
                            failures = 0
                        if problem is not None:
                            failures += 1
                            self._recover(problem, failures)
                finally:
                    planner.finish(work)
        except Cancelled:
            self._abort.set()
        except (DownloadError, RangeIgnored) as error:
            self._fail(error)
        except Exception as error:  # a bug must end the file, not hang it
            self._fail(DownloadError(f"{self.job.dest.name}: internal error: {error!r}"))

    def _attempt(
        self, fd: int, planner: RangePlanner, work: Assignment, single: bool
    ) -> Exception | None:
        """Make one request for work; return why it failed, or None if it brought new bytes.

        A request that ends without error yet adds no byte (a 206 whose range is empty) is a
        failure too: counted like any other, it cannot make the connection ask again forever.
        """
        before = work.cursor
        try:
            self._fetch_range(fd, planner, work, single)
        except (Transient, TooSlow, LinkExpired) as problem:
            return problem
        if work.cursor > before or self._stopping():
            return None
        return Transient(f"the server sent no bytes for bytes {before}-{work.end - 1}")

    def _recover(self, problem: Exception, failures: int) -> None:
        """Wait before trying again, or give up when the server keeps failing."""
        settings = self.settings
        if self._stopping():
            raise Cancelled  # a cut connection is not a failure of the server
        if failures > settings.retries:
            raise DownloadError(
                f"{self.job.dest.name}: giving up after {settings.retries} retries: {problem}"
            )
        if isinstance(problem, LinkExpired):
            stale = str(problem)
            self._retrying(lambda: self.resolver.refresh(stale))
            return
        wait = getattr(problem, "wait", None)
        if wait is None:
            wait = min(30.0, settings.backoff * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)
        self.reporter.progress(self.reporter.done, message=f"{problem}; retrying")
        clock = settings.clock
        deadline = clock() + wait
        while not self._stopping() and clock() < deadline:
            settings.nap(self.cancel, min(0.1, max(0.0, deadline - clock())))
        if self._stopping():
            raise Cancelled

    def _retrying(self, action):
        """Run action, retrying transient failures with backoff (Hub lookups, sizeless files)."""
        failures = 0
        while True:
            if self._stopping():
                raise Cancelled
            try:
                with watching(self.cancel):
                    return action()
            except (Transient, TooSlow, LinkExpired) as problem:
                failures += 1
                self._recover(problem, failures)

    def _fetch_range(self, fd: int, planner: RangePlanner, work: Assignment, single: bool) -> None:
        """One GET for bytes [cursor, end) of the work; write what arrives."""
        link = self.resolver.link
        assert link is not None
        url = link.data_url
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
            elif response.status == 403 and origin(url) != origin(self.resolver.url):
                raise LinkExpired(url)
            else:
                raise status_problem(response, url, f"downloading {self.job.dest.name}")
            self._read_body(fd, planner, work, response, skip, stop)

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
            raise Transient(f"cannot reach {origin(url)[1]}: {reason(error)}") from error
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
    ) -> None:
        settings = self.settings
        watchdog = SpeedWatchdog(settings.min_speed, settings.stall_window)
        while skip > 0:  # a server that ignores Range: read past what we have
            data = response.read(min(skip, settings.read_size))
            if not data:
                raise Transient("the server closed the connection early (short body)")
            skip -= len(data)
        while work.cursor < min(work.end, stop):
            want = min(settings.read_size, work.end - work.cursor, stop - work.cursor)
            data = response.read(self._allowance(want, watchdog))
            if not data:
                raise Transient("the server closed the connection early (short body)")
            write_at(fd, data, work.cursor, self.paths.part)
            planner.advance(work, len(data))
            watchdog.feed(len(data))

    def _allowance(self, want: int, watchdog: SpeedWatchdog) -> int:
        """Wait until the shared limit allows up to want bytes; the wait is not a stall."""
        if self.limiter.rate is None:
            return want
        started = time.monotonic()
        allowed = self.limiter.acquire(want, self._stopping)
        watchdog.pause(time.monotonic() - started)
        if allowed == 0:
            raise Cancelled
        return allowed

    def _fetch_unknown_size(self, fd: int, expected: Expected) -> str | None:
        """Fetch a file whose size the Hub did not say with plain GETs; hash it after the fact."""
        # Without a size there is no range to resume from: each try starts at byte 0.
        try:
            received = self._retrying(lambda: self._stream_whole(fd))
        except DiskFull as error:
            raise DiskFull(self.paths.part, resumable=False) from error
        os.fsync(fd)
        self.reporter.total = received
        self.reporter.publish(ev.VERIFYING, received)
        if expected.kind is None:
            return None
        digest = file_digest(self.paths.part, expected.kind, self.cancel)
        if digest is None:
            raise Cancelled
        return digest

    def _stream_whole(self, fd: int) -> int:
        """One GET of the whole file into fd from byte 0; return how many bytes arrived."""
        os.ftruncate(fd, 0)
        link = self.resolver.link
        assert link is not None
        url = link.data_url
        settings = self.settings
        with self._get(url, {}) as response:
            if response.status == 403 and origin(url) != origin(self.resolver.url):
                raise LinkExpired(url)
            if response.status != 200:
                raise status_problem(response, url, f"downloading {self.job.dest.name}")
            watchdog = SpeedWatchdog(settings.min_speed, settings.stall_window)
            received = 0
            while True:
                want = self._allowance(settings.read_size, watchdog)
                if self._stopping():
                    raise Cancelled
                data = response.read(want)
                if not data:
                    break
                write_at(fd, data, received, self.paths.part)
                received += len(data)
                watchdog.feed(len(data))
                self.reporter.progress(received)
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) != received:
                raise Transient("the server closed the connection early (short body)")
            return received


def _identity_of_fd(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def _identity_of_name(path: Path) -> tuple[int, int] | None:
    """Return the (device, inode) of the name itself, a link not followed."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _same_file(path: Path, expected: Expected, cancel: CancelFlag) -> bool:
    """Tell whether the regular file at path is the expected one, by size and digest."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode) or info.st_size != expected.size:
        return False
    try:
        return file_digest(path, expected.kind, cancel) == expected.digest
    except OSError:
        return False


def busy_message(holder: Holder | None) -> str:
    """Say who is fetching a file we wait for, and how long it has shown no progress."""
    who = holder.describe() if holder is not None else "another wandown process"
    message = f"{who} is fetching this file"
    if holder is not None and holder.idle >= 10:
        message += f" (no progress for {idle_text(holder.idle)})"
    return message


def idle_text(seconds: float) -> str:
    """Round a waiting time the way a person says it: 40 s, 3 min (steps, so it rarely changes)."""
    if seconds < 10:
        return f"{int(seconds)} s"
    if seconds < 60:
        return f"{int(seconds) // 10 * 10} s"
    return f"{int(seconds) // 60} min"


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino, stat.st_mtime_ns
