"""Hand a download's finished bytes to the disk while the rest still arrives.

A verified file must be on disk before it is renamed into place, and with gigabytes of RAM
the kernel writes little back on its own: the final fsync of a 2 GB file then takes seconds,
all after the last byte arrived. Starting writeback of each hashed step as it is done leaves
that sync with almost nothing to do. A thread of its own does it, since handing pages to a
busy disk can block, and the hasher is what the end of a download waits for.
"""

from __future__ import annotations

import os
import threading

# Bytes handed to the disk at a time; also how much of the finished prefix stays cached.
STEP = 64 * 1024 * 1024


def start_writeback(fd: int, start: int, length: int) -> None:
    """Start writing [start, start + length) to disk, and drop what is already written.

    POSIX_FADV_DONTNEED starts asynchronous writeback of dirty pages in the range and evicts
    the clean ones (Linux mm/fadvise.c), so each call writes the newest step and frees the one
    written before it: the final fsync finds little left, and a 30 GB download does not push
    everything else out of the page cache. A no-op where the call does not exist (macOS).
    """
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None and length > 0:
        advise(fd, start, length, os.POSIX_FADV_DONTNEED)


class Writeback:
    """A thread that follows a file's final prefix (`reached`) and writes it back step by step.

    Each call covers the newest step and the one before it: that one was written by now, so
    its pages leave the cache. Errors are ignored: the final fsync is what reports them.
    """

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self._size = size
        self._target = 0  # final bytes so far
        self._written = 0  # handed to the disk so far (this thread's own)
        self._stopped = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="wandown-writeback", daemon=True)
        self._thread.start()

    def reached(self, offset: int) -> None:
        """Say that bytes [0, offset) are final (cheap: the hasher calls it per block)."""
        with self._changed:
            self._target = offset
            self._changed.notify()

    def stop(self) -> None:
        """End the thread once it has handed over what was reached; wait for it."""
        with self._changed:
            self._stopped = True
            self._changed.notify()
        self._thread.join()

    def _due(self) -> bool:
        target, written = self._target, self._written
        return target - written >= STEP or (target == self._size and target > written)

    def _ready(self) -> bool:
        return self._stopped or self._due()

    def _run(self) -> None:
        previous = 0  # where the step before the last began
        while True:
            with self._changed:
                self._changed.wait_for(self._ready)
                if not self._due():
                    return
                target = self._target
            try:
                start_writeback(self._fd, previous, target - previous)
            except OSError:
                return
            previous, self._written = self._written, target
