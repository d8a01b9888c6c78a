"""Partial files, their resume state and their lock, in a hidden folder beside the destination.

For a destination `models/x.safetensors` the engine keeps:
  models/.wandown/x.safetensors.part   the bytes, written at their offsets
  models/.wandown/x.safetensors.state  JSON: remote identity and the finished ranges
  models/.wandown/x.safetensors.lock   flock()ed by the one process fetching the file
Same folder, same file system: the finished part becomes the destination by one rename.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandown.fsutil import atomic_write_json
from wandown.jsonfile import read_json

from .ranges import RangeSet

PARTIAL_FOLDER = ".wandown"
STATE_VERSION = 1


@dataclass(frozen=True)
class PartialPaths:
    """Where the partial download of one destination lives."""

    dest: Path
    folder: Path
    part: Path
    state: Path
    lock: Path

    @classmethod
    def for_dest(cls, dest: Path) -> PartialPaths:
        dest = Path(dest)
        folder = dest.parent / PARTIAL_FOLDER
        return cls(
            dest=dest,
            folder=folder,
            part=folder / f"{dest.name}.part",
            state=folder / f"{dest.name}.state",
            lock=folder / f"{dest.name}.lock",
        )

    def discard(self) -> None:
        """Remove the partial bytes and the state (never the destination)."""
        for path in (self.state, self.part):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def tidy(self) -> None:
        """Remove the hidden folder if nothing is left in it."""
        with contextlib.suppress(OSError):
            self.folder.rmdir()


@dataclass
class PartialState:
    """What a partial file holds: which remote file it is a piece of, and which bytes are done.

    A partial is only resumed when size and hashes equal the job's; any difference means the
    remote file changed, and mixing bytes of two versions would give a file that never verifies.
    """

    url: str
    size: int | None
    sha256: str | None
    blob_sha1: str | None
    commit: str | None = None
    done: RangeSet = field(default_factory=RangeSet)

    def same_remote(self, other: PartialState) -> bool:
        return (self.size, self.sha256, self.blob_sha1) == (
            other.size,
            other.sha256,
            other.blob_sha1,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "url": self.url,
            "size": self.size,
            "sha256": self.sha256,
            "blob_sha1": self.blob_sha1,
            "commit": self.commit,
            "done": [list(r) for r in self.done.ranges()],
        }

    @classmethod
    def from_json(cls, value: Any) -> PartialState | None:
        """Return the state, or None if value is not a state this version wrote."""
        try:
            if value.get("version") != STATE_VERSION:
                return None
            size = None if value["size"] is None else int(value["size"])
            done = RangeSet()
            for start, end in value["done"]:
                start, end = int(start), int(end)
                if not 0 <= start <= end or (size is not None and end > size):
                    return None  # ranges outside the file: not a state we wrote
                done.add(start, end)
            return cls(
                url=str(value["url"]),
                size=size,
                sha256=value.get("sha256"),
                blob_sha1=value.get("blob_sha1"),
                commit=value.get("commit"),
                done=done,
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            return None


def load_state(path: Path) -> PartialState | None:
    """Read a state file; a missing, unreadable or damaged one reads as None (start over)."""
    try:
        return PartialState.from_json(read_json(path))
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None


def save_state(path: Path, state: PartialState) -> None:
    """Write the state atomically, so a kill at any moment leaves the old or the new one."""
    atomic_write_json(path, state.to_json())


class FileLock:
    """An exclusive flock() on a lock file, held while one process fetches one file.

    The lock file is removed when released after a completed download; a process that was
    waiting on the removed file notices (the path no longer names its inode) and locks anew.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock without waiting; return False if another process holds it."""
        while True:
            # The holder may have just finished and removed the lock file and its folder.
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return True
            os.close(fd)

    def release(self, remove: bool = False) -> None:
        """Let go of the lock; with remove, delete the lock file first (while still holding it)."""
        if self._fd is None:
            return
        if remove:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        os.close(self._fd)
        self._fd = None
