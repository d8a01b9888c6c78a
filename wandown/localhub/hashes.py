"""File digests the Hub protocol needs, computed once and remembered across restarts.

The cache lives beside the served root (``<parent>/.<root name>.localhub-hashes.json``) so that
a machine serving gigabytes restarts instantly; when that folder is read-only it falls back to
wandown's cache folder. Entries are keyed by real path and trusted only while size, mtime, ctime
and inode match.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

from wandown.digests import BLOB_SHA1, hash_file, new_hash
from wandown.fsutil import atomic_write_json, cache_dir
from wandown.jsonfile import read_json

CACHE_VERSION = 1
# Saving rewrites the whole file; after many small files, once a second is plenty.
SAVE_EVERY = 1.0
BIG_FILE = 64 * 1024 * 1024


def git_blob_sha1(data: bytes) -> str:
    """Return git's object id for a blob holding data."""
    digest = new_hash(BLOB_SHA1, len(data))
    digest.update(data)
    return digest.hexdigest()


Entry = dict[str, object]
"""One file's record: size, mtime_ns, ctime_ns, inode and {kind: hex digest}, as read from JSON."""


def _stamp(entry: Entry) -> tuple[object, ...]:
    """Return what a cache entry says the file looked like: size, mtime, ctime, inode."""
    return tuple(entry.get(name, 0) for name in ("size", "mtime_ns", "ctime_ns", "inode"))


def default_cache_paths(root: Path) -> tuple[Path, Path]:
    """Return (beside-root path, fallback path in wandown's cache folder) for root's hash cache."""
    root = Path(root).resolve()
    beside = root.parent / f".{root.name}.localhub-hashes.json"
    tag = hashlib.sha1(str(root).encode(), usedforsecurity=False).hexdigest()[:12]
    fallback = cache_dir() / "localhub" / f"{root.name}-{tag}.hashes.json"
    return beside, fallback


class HashCache:
    """Thread-safe, persistent map from (path, size, mtime) to digests, one kind at a time.

    ``hashed`` counts files actually read, so tests can prove a restart re-hashed nothing.
    """

    def __init__(self, root: Path, path: Path | None = None) -> None:
        beside, fallback = default_cache_paths(root)
        self._candidates = [path] if path is not None else [beside, fallback]
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()
        self._file_locks: dict[str, threading.Lock] = {}
        self._save_lock = threading.Lock()
        self._last_save = 0.0
        self._dirty = False
        self._timer: threading.Timer | None = None
        self.hashed = 0
        self.path: Path | None = None
        self._load()

    def _load(self) -> None:
        for candidate in self._candidates:
            try:
                data = read_json(candidate)
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("version") == CACHE_VERSION:
                files = data.get("files")
                if isinstance(files, dict):
                    self._entries = {k: v for k, v in files.items() if isinstance(v, dict)}
                    self.path = Path(candidate)
                    return

    def lookup(
        self, path: Path, size: int, mtime_ns: int, kind: str, *, ctime_ns: int = 0, inode: int = 0
    ) -> str | None:
        """Return path's remembered digest of this kind if the file has not changed since.

        Size and mtime alone miss a file replaced by one with the same size and mtime (rsync -a,
        cp -p, a write within the clock's tick): ctime and inode, which no copy keeps, catch it.
        """
        key = os.path.realpath(path)
        with self._lock:
            entry = self._entries.get(key)
        if entry and _stamp(entry) == (size, mtime_ns, ctime_ns, inode):
            value = entry.get(kind)
            return value if isinstance(value, str) else None
        return None

    def digest(
        self, path: Path, size: int, mtime_ns: int, kind: str, *, ctime_ns: int = 0, inode: int = 0
    ) -> str:
        """Return path's digest of this kind, reading the file (once, even under concurrent
        callers) if it is not remembered."""
        stamp = {"ctime_ns": ctime_ns, "inode": inode}
        known = self.lookup(path, size, mtime_ns, kind, **stamp)
        if known is not None:
            return known
        key = os.path.realpath(path)
        with self._lock:
            file_lock = self._file_locks.setdefault(key, threading.Lock())
        with file_lock:
            known = self.lookup(path, size, mtime_ns, kind, **stamp)
            if known is not None:
                return known
            value = hash_file(path, [kind]).get(kind)
            if value is None or os.stat(path).st_size != size:
                raise OSError(f"{path} changed while it was hashed")
            with self._lock:
                self.hashed += 1
                entry = self._entries.get(key, {})
                if _stamp(entry) != (size, mtime_ns, ctime_ns, inode):
                    entry = {"size": size, "mtime_ns": mtime_ns, **stamp}
                self._entries[key] = {**entry, kind: value}
                self._dirty = True
            self._save_soon(now=size >= BIG_FILE)
            return value

    def _save_soon(self, now: bool) -> None:
        """Save at once after a big file, else at most once a second (a timer catches the rest)."""
        with self._lock:
            due = now or time.monotonic() - self._last_save >= SAVE_EVERY
            if not due and self._timer is None:
                self._timer = threading.Timer(SAVE_EVERY, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if due:
            self._save()

    def flush(self) -> None:
        """Write what is not saved yet (the server calls this when it stops)."""
        with self._lock:
            timer, self._timer = self._timer, None
            dirty = self._dirty
        if timer is not None:
            timer.cancel()
        if dirty:
            self._save()

    def _save(self) -> None:
        # The save lock keeps an older snapshot from landing after a newer one.
        with self._save_lock:
            self._last_save = time.monotonic()
            with self._lock:
                self._dirty = False
                value = {"version": CACHE_VERSION, "files": dict(self._entries)}
            self._write(value)

    def _write(self, value: dict[str, object]) -> None:
        ordered = [self.path] if self.path is not None else []
        ordered += [c for c in self._candidates if c != self.path]
        for candidate in ordered:
            try:
                atomic_write_json(Path(candidate), value)
            except OSError:
                continue
            self.path = Path(candidate)
            return
