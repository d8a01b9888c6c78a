"""One file's life cycle: its working folder and lock, resume state, verification, placement."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import stat
from pathlib import Path

import urllib3

from wandown import destination, fsutil
from wandown.digests import file_digest
from wandown.errors import DownloadError, WandownError

from . import events as ev
from .cancel import CancelFlag
from .connection import Connections, DiskFull
from .controller import ConnectionBudget
from .events import Event, Reporter
from .fetch import Cancelled, Link, Resolver
from .fill import PartFill
from .job import DownloadJob, Expected, Settings, expected_file
from .partial import (
    FileLock,
    Holder,
    PartialPaths,
    PartialState,
    WorkingFolder,
    load_state,
    save_state,
)
from .ratelimit import RateLimiter
from .sources import (
    MIRROR_RETRIES,
    FileSource,
    PaceWatch,
    Sources,
    disagreement,
    pace_floor,
)

_LATER = re.compile(r"; try again (later|in \d+ s)\.?$")


class Lied(DownloadError):
    """An endpoint served bytes that do not verify against the source of truth's digest."""


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
        source: FileSource | None = None,
        budget: ConnectionBudget | None = None,
    ) -> None:
        self.job = job
        self.settings = settings
        self.source = source or Sources().for_url(job.url)
        self.resolver = resolver
        self.reporter = reporter
        self.cancel = cancel
        self.paths = PartialPaths.for_dest(job.dest)
        self.net = Connections(
            job, self.paths.part, settings, pool, limiter, resolver, reporter, cancel
        )
        self._fill = PartFill(self.paths, settings, reporter, self.net, budget)
        self._use_source()

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
            kept = "the partial is kept" if self.reporter.done else "nothing had arrived yet"
            return self.reporter.publish(ev.CANCELLED, message=f"stopped; {kept}")
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
        expected = self._expected()
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
            identity.done, identity.sources = saved.done, saved.sources
        else:
            self.paths.discard()
        while True:
            try:
                told = self._fetch_here(expected, identity)
                break
            except DownloadError as error:
                if not self._fail_over(error):
                    raise
        placed = self._place(expected)
        return "; ".join(part for part in (told, placed) if part)

    def _expected(self) -> Expected:
        """Return the file as the source of truth describes it, asking it only when needed.

        With several endpoints, a job that already holds the truth's size and digest (from its
        metadata) needs no request to the truth at all: a caching proxy or a peer can then
        serve it while the Hub sees nothing.
        """
        job = self.job
        if self.source.several:
            if job.size is not None and (job.sha256 or job.blob_sha1):
                return expected_file(job, Link(job.url, None, None, None, None))
            if not self.source.is_truth:
                truth = self.resolver.elsewhere(job.url)
                return expected_file(job, self.net.retrying(truth.resolve))
        return expected_file(job, self.net.retrying(self.resolver.resolve))

    def _fetch_here(self, expected: Expected, identity: PartialState) -> str:
        """Fetch from the endpoint in use and verify against the truth's digest.

        A partial that does not verify blames only the endpoint whose bytes it holds: when its
        bytes came from several endpoints (a failover resumed it), the others' bytes are fetched
        again from this one; if the file then verifies, those others served the wrong bytes.
        Returns what to tell about them ("" when nothing).
        """
        if self.resolver.link is None:
            link = self.net.retrying(self.resolver.resolve)
            if self.source.is_truth:
                expected_file(self.job, link)  # the Hub changed under the job: RemoteChanged
            else:
                why = disagreement(expected, link)
                if why is not None:
                    raise DownloadError(f"{self.source.shown} has another version: {why}")
        here = self.source.shown
        replaced: list[str] = []
        failures = 0
        while True:
            digest = self._fill_from(here, expected, identity)
            if expected.kind is None or digest == expected.digest:
                return self._blame(replaced, here)
            others = identity.others(here) if self.source.several else []
            if others:
                replaced += [name for name in others if name not in replaced]
                identity.keep_only(here)
                self.reporter.publish(
                    ev.DOWNLOADING,
                    identity.done.total(),
                    message=f"the download does not verify; fetching the bytes "
                    f"{' and '.join(others)} served again from {here}",
                )
                continue
            self.paths.discard()
            identity.forget()
            problem = (
                f"{expected.kind} mismatch for {self.job.dest.name}: the Hub says "
                f"{expected.digest}, the download has {digest}"
            )
            if not self.source.is_truth:
                raise Lied(
                    f"{here} served bytes whose {expected.kind} is not the source of truth's "
                    f"({digest}, expected {expected.digest}); not using it again this run"
                )
            failures += 1
            if failures == 2:
                raise DownloadError(f"{problem} (twice); the bad download was removed")
            self.reporter.publish(ev.DOWNLOADING, 0, message=f"{problem}; fetching again")

    def _fill_from(self, here: str, expected: Expected, identity: PartialState) -> str | None:
        """Run one pass on the endpoint in use; its new bytes are credited to it."""
        self.reporter.publish(ev.DOWNLOADING, identity.done.total())
        identity.fetching = here
        self._save_first(identity)
        try:
            floor = pace_floor(self.net.limiter.rate)
            with PaceWatch(self.source, self._done_bytes, self._leave_slow, floor=floor):
                return self._fill.fill(identity, expected)
        finally:
            identity.credit(here)

    def _done_bytes(self) -> int:
        return self.reporter.done

    def _blame(self, replaced: list[str], here: str) -> str:
        """Say who served the bytes that had to be replaced for the file to verify."""
        if not replaced:
            return ""
        if len(replaced) > 1:
            return (
                f"bytes served by {' or '.join(replaced)} did not verify and were fetched again "
                f"from {here}"
            )
        liar = replaced[0]
        sources = self.source.sources
        plan = sources.plan
        if plan is not None and liar in plan.order and not sources.is_truth(liar):
            sources.lied(liar, f"{liar} served bytes that are not the source of truth's")
            return (
                f"{liar} served bytes of it that are not the source of truth's (fetched again "
                f"from {here}, the file verifies); not using {liar} again this run"
            )
        return f"the bytes of {liar} did not verify and were fetched again from {here}"

    def _leave_slow(self, why: str) -> None:
        """End the pass on an endpoint that is far too slow; _fail_over moves the file on."""
        self.net.fail(DownloadError(why))

    def _fail_over(self, error: DownloadError) -> bool:
        """Move to the next endpoint after a failure there; False if there is none to try.

        A local failure (a full disk, an unwritable folder) is no endpoint's fault: it ends
        the file wherever its bytes came from.
        """
        if isinstance(error, DiskFull) or isinstance(error.__cause__, OSError):
            return False
        source, was = self.source, self.source.shown
        if isinstance(error, Lied) and source.base is not None:
            source.sources.lied(source.base, str(error))
        if not source.advance():
            return False
        self._use_source()
        self.net.start_pass()  # the failed pass's abort flag must not stop the next endpoint
        # "try again later" is moot: the file moves on at once.
        why = _LATER.sub("", str(error))
        self.reporter.failover = f"from {was} to {source.shown}: {why}"
        self.reporter.publish(ev.DOWNLOADING)
        return True

    def _use_source(self) -> None:
        """Point the file's requests at the endpoint in use; retry less where another waits."""
        source = self.source
        if self.resolver.url != source.url:
            self.resolver = self.net.resolver = self.resolver.elsewhere(source.url)
        self.resolver.speaker = "the Hub" if source.is_truth else source.shown
        settings = self.settings
        if source.has_next:
            settings = dataclasses.replace(
                settings,
                retries=MIRROR_RETRIES,
                retry=dataclasses.replace(settings.retry, max_attempts=MIRROR_RETRIES + 1),
            )
        self.net.settings = settings
        self.reporter.endpoint = source.shown

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
        if _identity_of_name(part) != self._fill.part_identity:
            raise DownloadError(
                f"{part} was replaced while {dest.name} was downloading; not placing it. Remove "
                "it and run again"
            )
        # The folders may have moved since the plan was made (a Wan2GP folder turned into a link
        # into the hub mid-download): ask again, as late as possible.
        hubs, hub_ids = self.job.hub_folders, self.job.hub_folder_ids
        why = destination.problem(dest, self.job.key, hubs, hub_ids)
        if why is not None:
            if destination.in_hub(part, self.job.key, hubs, hub_ids) is None:
                raise DownloadError(f"{why}; the verified download stays in {part}")
            self.paths.discard()  # our own file, but inside the hub now: take it away
            raise DownloadError(f"{why}; the download was not placed and its part was removed")
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
    if expected.kind is None:
        return False  # without a digest, "the same" cannot be proved
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
