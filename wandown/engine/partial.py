"""Partial files, their resume state and their lock, in a hidden folder beside the destination.

For a destination `models/x.safetensors` the engine keeps:
  models/.wandown/x.safetensors.part   the bytes, written at their offsets
  models/.wandown/x.safetensors.state  JSON: remote identity and the finished ranges
  models/.wandown/x.safetensors.lock   flock()ed by the one process fetching the file
Same folder, same file system: the finished part becomes the destination by one rename.
A name too long for the suffixes is shortened and tagged with a hash of the whole name.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import socket
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandown.fsutil import UnsafePathError, open_private_file
from wandown.jsonfile import read_json

from .ranges import RangeSet

PARTIAL_FOLDER = ".wandown"
STATE_VERSION = 1
UNKNOWN_SOURCE = "an earlier download"  # bytes whose endpoint a state does not say
NAME_MAX = 255  # bytes in one path component on Linux, macOS and Windows file systems
_SUFFIXES = (".part", ".state", ".lock", ".stmp")
STATE_BLOCK = 4096  # state files are padded to whole blocks, so rewriting one needs no space
HEARTBEAT_EVERY = 1.0  # seconds between touches of a held lock file


def working_stem(name: str) -> str:
    """Return the name the working files of a destination called name share.

    Any legal name plus the longest suffix must fit NAME_MAX bytes; a name that would not is
    cut at a character boundary and tagged with a hash of the whole name, so it stays unique.
    """
    raw = os.fsencode(name)
    room = NAME_MAX - max(len(suffix) for suffix in _SUFFIXES)
    if len(raw) <= room:
        return name
    tag = "~" + hashlib.sha256(raw).hexdigest()[:16]
    stem = raw[: room - len(tag)].decode("utf-8", "ignore")
    return stem + tag


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
        stem = working_stem(dest.name)
        return cls(
            dest=dest,
            folder=folder,
            part=folder / f"{stem}.part",
            state=folder / f"{stem}.state",
            lock=folder / f"{stem}.lock",
        )

    def discard(self) -> None:
        """Remove the partial bytes and the state (never the destination)."""
        for path in (self.state, self.part):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


@dataclass
class PartialState:
    """What a partial file holds: which remote file it is a piece of, and which bytes are done.

    A partial is only resumed when size and hashes equal the job's; any difference means the
    remote file changed, and mixing bytes of two versions would give a file that never verifies.

    `sources` says which endpoint served which of the done bytes, and `fetching` the endpoint of
    the pass under way (its bytes are credited to it when the pass ends, or when a state saved
    mid-pass is read back): a partial that fails verification can then blame the endpoint whose
    bytes it holds, and only that one. Bytes of unknown origin are under UNKNOWN_SOURCE.
    """

    url: str
    size: int | None
    sha256: str | None
    blob_sha1: str | None
    commit: str | None = None
    done: RangeSet = field(default_factory=RangeSet)
    sources: dict[str, RangeSet] = field(default_factory=dict)
    fetching: str | None = None

    def credit(self, endpoint: str) -> None:
        """Credit the done bytes nobody is credited with to endpoint; forget bytes not done."""
        claimed = RangeSet()
        for name in list(self.sources):
            kept = self.sources[name].within(self.done)
            if kept.total():
                self.sources[name] = kept
                for start, end in kept.ranges():
                    claimed.add(start, end)
            else:
                del self.sources[name]
        new = self.done.without(claimed)
        if new.total():
            mine = self.sources.setdefault(endpoint, RangeSet())
            for start, end in new.ranges():
                mine.add(start, end)

    def others(self, endpoint: str) -> list[str]:
        """Return the endpoints other than endpoint that served some of the done bytes.

        Done bytes nobody is credited with count as UNKNOWN_SOURCE's.
        """
        names = {name for name, ranges in self.sources.items() if ranges.within(self.done).total()}
        claimed = RangeSet(span for ranges in self.sources.values() for span in ranges.ranges())
        if self.done.without(claimed).total():
            names.add(UNKNOWN_SOURCE)
        return sorted(names - {endpoint})

    def keep_only(self, endpoint: str) -> None:
        """Forget the done bytes that endpoint did not serve (they are fetched again)."""
        mine = self.sources.get(endpoint, RangeSet()).within(self.done)
        self.done = mine
        self.sources = {endpoint: RangeSet(mine.ranges())} if mine.total() else {}

    def forget(self) -> None:
        """Forget every done byte (the part was removed)."""
        self.done = RangeSet()
        self.sources = {}

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
            "sources": {
                name: [list(r) for r in ranges.ranges()] for name, ranges in self.sources.items()
            },
            "fetching": self.fetching,
        }

    @classmethod
    def from_json(cls, value: Any) -> PartialState | None:
        """Return the state, or None if value is not a state this version wrote."""
        try:
            if value.get("version") != STATE_VERSION:
                return None
            size = None if value["size"] is None else int(value["size"])
            done = _ranges(value["done"], size)
            sources = {str(k): _ranges(v, size) for k, v in value.get("sources", {}).items()}
            fetching = value.get("fetching")
            state = cls(
                url=str(value["url"]),
                size=size,
                sha256=value.get("sha256"),
                blob_sha1=value.get("blob_sha1"),
                commit=value.get("commit"),
                done=done,
                sources=sources,
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            return None
        # Bytes of the pass a stop cut short were the endpoint's it was fetching from.
        state.credit(fetching if isinstance(fetching, str) else UNKNOWN_SOURCE)
        return state


def _ranges(value: Any, size: int | None) -> RangeSet:
    """Read [[start, end], ...]; ValueError for ranges outside the file (not a state we wrote)."""
    ranges = RangeSet()
    for start, end in value:
        start, end = int(start), int(end)
        if not 0 <= start <= end or (size is not None and end > size):
            raise ValueError("a range outside the file")
        ranges.add(start, end)
    return ranges


def load_state(path: Path) -> PartialState | None:
    """Read a state file; a missing, unreadable or damaged one reads as None (start over)."""
    try:
        return PartialState.from_json(read_json(path))
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None


def save_state(path: Path, state: PartialState) -> None:
    """Write the state so a kill at any moment leaves the old or the new one.

    Normally through a temporary file and a rename; when the disk is full, over the old state
    in place, which needs no new space because every state file is padded to whole blocks:
    the disk filling up is exactly when the finished ranges must be kept.
    """
    path = Path(path)
    text = json.dumps(state.to_json(), sort_keys=True, ensure_ascii=False).encode("utf-8")
    try:
        _replace_state(path, _padded(text, STATE_BLOCK))
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT) or not _overwrite_state(path, text):
            raise


def _padded(text: bytes, size: int) -> bytes:
    """Return text padded with spaces to a multiple of size, ending in a newline."""
    blocks = (len(text) + 1 + size - 1) // size
    return text.ljust(blocks * size - 1) + b"\n"


def _replace_state(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".stmp")  # only the lock holder writes the state: one name is enough
    fd = open_private_file(tmp)
    try:
        try:
            os.ftruncate(fd, 0)
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _overwrite_state(path: Path, text: bytes) -> bool:
    """Rewrite the state file in its own blocks; False if it is missing or too small."""
    try:
        fd = open_private_file(path, create=False)
    except FileNotFoundError:
        return False
    try:
        size = os.fstat(fd).st_size
        if len(text) + 1 > size:
            return False
        _write_all(fd, text.ljust(size - 1) + b"\n")
        os.fsync(fd)
        return True
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    offset = 0
    while offset < len(view):
        offset += os.pwrite(fd, view[offset:], offset)


class WorkingFolder:
    """The hidden folder beside some destinations, held by everyone who uses it.

    Users hold a shared flock() on the destination folder from before they make the hidden
    folder until they are done with it; the folder is removed only under an exclusive flock(),
    so no thread or process is ever between making it and opening a file in it. Where the
    file system has no flock(), the folder is simply never removed.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._fd: int | None = None

    def enter(self) -> None:
        """Make the folder (and its parents) and hold it; OSError when that is impossible."""
        parent = self.folder.parent
        parent.mkdir(parents=True, exist_ok=True)
        self._fd = _lock_folder(parent, fcntl.LOCK_SH)
        try:
            with contextlib.suppress(FileExistsError):
                self.folder.mkdir()
            info = os.lstat(self.folder)
            if not stat.S_ISDIR(info.st_mode):
                raise UnsafePathError(
                    f"{self.folder} is not a plain folder; wandown keeps its partial downloads "
                    "there. Remove it and run again."
                )
        except BaseException:
            self.leave(tidy=False)
            raise

    def leave(self, tidy: bool = True) -> None:
        """Stop holding the folder; with tidy, remove it if it is empty and nobody holds it."""
        if self._fd is None:
            return
        os.close(self._fd)
        self._fd = None
        if not tidy:
            return
        with contextlib.suppress(OSError):
            fd = _lock_folder(self.folder.parent, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if fd is None:
                return
            try:
                self.folder.rmdir()  # fails, as it should, while anything is left in it
            finally:
                os.close(fd)


def _lock_folder(folder: Path, how: int) -> int | None:
    """flock() folder itself; None where that cannot be done (then nobody removes anything)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, how)
    except OSError:  # held (with LOCK_NB), or no flock() here (some network file systems)
        os.close(fd)
        return None
    return fd


@dataclass(frozen=True)
class Holder:
    """Who holds a file's lock, as the lock file says, and how long since it showed progress."""

    pid: int | None
    host: str
    idle: float

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid else "another wandown process"
        if self.host and self.host != socket.gethostname():
            who += f" on {self.host}"
        return who


LOCK_OPEN_TRIES = 100  # a lock file removed as it is opened, again and again: a busy folder


class FileLock:
    """An exclusive flock() on a lock file, held while one process fetches one file.

    The holder writes its pid and host into the file and touches it every HEARTBEAT_EVERY
    seconds, so a waiter can tell a working holder from a stopped or hung one. The lock file
    is removed when released after a completed download; a process that was waiting on the
    removed file notices (the path no longer names its inode) and locks anew.
    """

    def __init__(self, path: Path, heartbeat: float = HEARTBEAT_EVERY) -> None:
        self.path = Path(path)
        self.heartbeat = heartbeat
        self._fd: int | None = None
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None

    def try_acquire(self) -> bool:
        """Take the lock without waiting; return False if another process holds it."""
        while True:
            fd = self._open()
            if fd is None:
                continue
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
                self._hold(fd)
                return True
            os.close(fd)

    def _open(self) -> int | None:
        """Open the lock file; None if it was removed as we opened it (then open it anew)."""
        for _ in range(LOCK_OPEN_TRIES):
            try:
                return open_private_file(self.path)
            except UnsafePathError:
                # A holder that finished unlinks the file: opened just then, it has no name
                # left (st_nlink 0), which is not someone else's file but ours, gone. Only a
                # link, or a file that keeps a second name, is really someone else's.
                try:
                    info = os.lstat(self.path)
                except FileNotFoundError:
                    return None
                if not stat.S_ISREG(info.st_mode):
                    raise
        return open_private_file(self.path)  # the same answer every time: say why

    def _hold(self, fd: int) -> None:
        self._fd = fd
        with contextlib.suppress(OSError):  # the record only informs waiters
            os.ftruncate(fd, 0)
            _write_all(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self._stop.clear()
        self._beater = threading.Thread(
            target=self._beat, args=(fd,), name="wandown-heartbeat", daemon=True
        )
        self._beater.start()

    def _beat(self, fd: int) -> None:
        while not self._stop.wait(self.heartbeat):
            with contextlib.suppress(OSError):
                os.utime(fd)

    def holder(self) -> Holder | None:
        """Read who holds the lock; None if there is no lock file to read."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return None
            words = os.read(fd, 300).decode("utf-8", "replace").split()
        except OSError:
            return None
        finally:
            os.close(fd)
        pid = int(words[0]) if words and words[0].isdigit() else None
        host = words[1] if len(words) > 1 else ""
        return Holder(pid, host, max(0.0, time.time() - info.st_mtime))

    def release(self, remove: bool = False) -> None:
        """Let go of the lock; with remove, delete the lock file first (while still holding it)."""
        if self._fd is None:
            return
        self._stop.set()
        if self._beater is not None:
            self._beater.join()
            self._beater = None
        if remove:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        os.close(self._fd)
        self._fd = None
