"""Hash a partial file while it is being written, following its finished prefix."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from wandown.digests import git_blob_header, new_hash

__all__ = ["PrefixHasher", "git_blob_header", "new_hash"]

READ_BACK = 4 * 1024 * 1024


class PrefixHasher:
    """A thread that hashes bytes [0, prefix) of a file as the prefix grows.

    `prefix()` returns how far the file is finished without a gap; `condition` is notified when
    it may have grown. The bytes are read back with pread (from the page cache, as they were
    just written), in large blocks so hashlib releases the GIL while it works. Starting over at
    offset 0 on every run is what re-checks a resumed prefix. `on_hashed(offset)` is told how
    far the hashed (so final) prefix reaches after each block.
    """

    def __init__(
        self,
        fd: int,
        kind: str,
        size: int,
        prefix: Callable[[], int],
        condition: threading.Condition,
        stop: threading.Event,
        on_hashed: Callable[[int], None] = lambda offset: None,
    ) -> None:
        self._fd = fd
        self._on_hashed = on_hashed
        self._size = size
        self._prefix = prefix
        self._condition = condition
        self._stop = stop
        self._digest = new_hash(kind, size)
        self.hashed = 0
        self.error: OSError | None = None
        self.started = False
        self._thread = threading.Thread(target=self._run, name="wandown-hash", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.started = True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to timeout for the hashing to end (finished, stopped or failed)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def result(self, timeout: float | None = None) -> str | None:
        """Wait for the whole file to be hashed; None if stopped, timed out or a read failed."""
        self._thread.join(timeout)
        if self._thread.is_alive() or self.hashed < self._size or self.error:
            return None
        return self._digest.hexdigest()

    def _run(self) -> None:
        buffer = bytearray(min(READ_BACK, max(1, self._size)))
        view = memoryview(buffer)
        try:
            while self.hashed < self._size and not self._stop.is_set():
                with self._condition:
                    ready = self._prefix()
                    if ready <= self.hashed:
                        self._condition.wait(0.2)
                        continue
                while self.hashed < ready and not self._stop.is_set():
                    want = min(len(buffer), ready - self.hashed)
                    got = os.preadv(self._fd, [view[:want]], self.hashed)
                    if got <= 0:
                        raise OSError(f"the partial file ended at byte {self.hashed}")
                    self._digest.update(view[:got])
                    self.hashed += got
                    self._on_hashed(self.hashed)
        except OSError as error:
            self.error = error
