"""One pass over a file's bytes: the part file filled by connections, hashed alongside."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time

from wandown import fsutil
from wandown.digests import file_digest
from wandown.errors import DownloadError, WandownError

from . import events as ev
from .connection import Connections, DiskFull
from .controller import ConnectionBudget
from .crew import Crew
from .events import Reporter
from .fetch import Cancelled, RangeIgnored
from .hashing import PrefixHasher
from .job import Expected, Settings
from .partial import PartialPaths, PartialState, save_state
from .ranges import RangePlanner, RangeSet
from .writeback import STEP as WRITEBACK_STEP
from .writeback import Writeback


class PartFill:
    """Fill the part file of one download and return its digest; the caller places it.

    `part_identity` is the (device, inode) of the part file this pass wrote, so the caller can
    refuse to place a part file that was swapped under it. `budget` says how many connections
    to run (None: the settings' `connections`, all from the start).
    """

    def __init__(
        self,
        paths: PartialPaths,
        settings: Settings,
        reporter: Reporter,
        net: Connections,
        budget: ConnectionBudget | None = None,
    ) -> None:
        self.paths = paths
        self.budget = budget
        self.settings = settings
        self.reporter = reporter
        self.net = net
        self.cancel = net.cancel
        self.name = net.job.dest.name
        self.part_identity: tuple[int, int] | None = None

    def fill(self, state: PartialState, expected: Expected) -> str | None:
        """Fill the part file, hashing alongside; return its digest (None if unhashed)."""
        try:
            fd = fsutil.open_private_file(self.paths.part)
        except fsutil.UnsafePathError as error:
            # Our bookkeeping for it is worthless now; the thing at the part's name is not ours.
            with contextlib.suppress(FileNotFoundError):
                self.paths.state.unlink()
            raise DownloadError(f"{self.name}: {error}") from error
        info = os.fstat(fd)
        self.part_identity = (info.st_dev, info.st_ino)
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
        self.net.start_pass()
        if single:
            planner = RangePlanner(size, state.done, 1, max(size, 1), max(size, 1))
        else:
            planner = RangePlanner(
                size, state.done, settings.connections, settings.chunk_size, settings.min_chunk
            )
        state.done = planner.done
        hash_stop = threading.Event()
        hasher = None
        writeback = None
        try:
            # Small files: the final fsync alone is quick, a thread each would cost more.
            if size > WRITEBACK_STEP:
                writeback = Writeback(fd, size)
            if expected.kind is not None:
                hasher = self._start_hasher(fd, expected.kind, planner, hash_stop, writeback)
            self._run_connections(fd, planner, state, single)
            if self.net.failure is not None:
                raise self.net.failure
            if self.cancel.is_set():
                raise Cancelled
            if not planner.done.covers(size):
                raise DownloadError(f"{self.name}: the download stopped short")
            self.reporter.publish(ev.VERIFYING, size)
            return None if hasher is None else self._digest(hasher)
        finally:
            hash_stop.set()
            if hasher is not None and hasher.started:
                hasher.wait()
            if writeback is not None:
                writeback.stop()

    @staticmethod
    def _start_hasher(
        fd: int,
        kind: str,
        planner: RangePlanner,
        stop: threading.Event,
        writeback: Writeback | None,
    ) -> PrefixHasher:
        """Hash the part as its prefix grows; what is hashed is final, so it goes to disk too."""
        hasher = PrefixHasher(
            fd,
            kind,
            planner.size,
            planner.done.prefix_end,
            planner.changed,
            stop,
            writeback.reached if writeback is not None else lambda offset: None,
        )
        hasher.start()
        return hasher

    def _run_connections(
        self, fd: int, planner: RangePlanner, state: PartialState, single: bool
    ) -> None:
        """Run the connections (one for a small file) as the budget says, until every one ends."""
        crew = Crew(self.net, fd, planner, single)
        budget = None if single else self.budget
        key = self.net.job.key
        if budget is not None:
            budget.join(key, planner.done_bytes)
        try:
            if single:
                crew.resize(1)
            else:
                crew.resize(self.settings.connections if budget is None else budget.share(key))
            # Even after a failure to start, the workers that did start must end before the
            # caller closes the file descriptor they write to.
            self._watch(crew, planner, state, budget)
        finally:
            if budget is not None:
                budget.leave(key)

    def _digest(self, hasher: PrefixHasher) -> str:
        # Re-hashing a resumed prefix can take minutes: stay cancellable meanwhile.
        while not hasher.wait(0.1):
            if self.cancel.is_set():
                raise Cancelled
        digest = hasher.result()
        if digest is None:
            raise DownloadError(f"cannot read back {self.paths.part} to verify it: {hasher.error}")
        return digest

    def _watch(
        self,
        crew: Crew,
        planner: RangePlanner,
        state: PartialState,
        budget: ConnectionBudget | None,
    ) -> None:
        """Report progress, save the state and steer the connections until every one has ended."""
        last_saved = time.monotonic()
        key = self.net.job.key
        while crew.alive() or crew.revive(
            self.settings.connections if budget is None else budget.share(key)
        ):
            self.cancel.wait(0.1)
            self.reporter.progress(planner.done_bytes())
            if time.monotonic() - last_saved >= self.settings.state_every:
                self._save(planner, state)
                last_saved = time.monotonic()
            if budget is not None and not self.net.stopping():
                crew.resize(budget.share(key))
                crew.reopen_lagging()
        crew.join()
        if not self._save(planner, state) and isinstance(self.net.failure, DiskFull):
            self.net.failure = DiskFull(self.paths.part, resumable=False)
        self.reporter.progress(planner.done_bytes())

    def _save(self, planner: RangePlanner, state: PartialState) -> bool:
        """Save the finished ranges; False if they could not be saved."""
        snapshot = dataclasses.replace(state, done=RangeSet(planner.snapshot()))
        try:
            save_state(self.paths.state, snapshot)
        except (OSError, WandownError):  # a full disk must not hide the real error
            return False
        return True

    def _fetch_unknown_size(self, fd: int, expected: Expected) -> str | None:
        """Fetch a file whose size the Hub did not say with plain GETs; hash it after the fact."""
        # Without a size there is no range to resume from: each try starts at byte 0.
        try:
            received = self.net.retrying(lambda: self.net.stream_whole(fd))
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
