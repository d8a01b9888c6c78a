"""File digests the Hub protocol needs, computed once and remembered across restarts.

The cache lives beside the served root (``<parent>/.<root name>.localhub-hashes.json``) so that
a machine serving gigabytes restarts instantly; when that folder is read-only it falls back to
wandown's cache folder. Entries are keyed by real path and trusted only while size and mtime match.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from wandown.fsutil import atomic_write_json, cache_dir

CHUNK_SIZE = 1024 * 1024
CACHE_VERSION = 1


@dataclass(frozen=True)
class Digests:
    """The two digests of a file's content the Hub talks about."""

    sha256: str
    blob_sha1: str  # git's object id: sha1(b"blob <size>\0" + content)


def git_blob_sha1(data: bytes) -> str:
    """Return git's object id for a blob holding data."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def hash_file(path: Path, size: int) -> Digests:
    """Read path once in chunks and return its sha256 and git blob sha1."""
    sha256 = hashlib.sha256()
    sha1 = hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            sha256.update(chunk)
            sha1.update(chunk)
    return Digests(sha256.hexdigest(), sha1.hexdigest())


def default_cache_paths(root: Path) -> tuple[Path, Path]:
    """Return (beside-root path, fallback path in wandown's cache folder) for root's hash cache."""
    root = Path(root).resolve()
    beside = root.parent / f".{root.name}.localhub-hashes.json"
    tag = hashlib.sha1(str(root).encode(), usedforsecurity=False).hexdigest()[:12]
    fallback = cache_dir() / "localhub" / f"{root.name}-{tag}.hashes.json"
    return beside, fallback


class HashCache:
    """Thread-safe, persistent map from (path, size, mtime) to Digests.

    ``hashed`` counts files actually read, so tests can prove a restart re-hashed nothing.
    """

    def __init__(self, root: Path, path: Path | None = None) -> None:
        beside, fallback = default_cache_paths(root)
        self._candidates = [path] if path is not None else [beside, fallback]
        self._entries: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._file_locks: dict[str, threading.Lock] = {}
        self._save_lock = threading.Lock()
        self.hashed = 0
        self.path: Path | None = None
        self._load()

    def _load(self) -> None:
        for candidate in self._candidates:
            try:
                data = json.loads(Path(candidate).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("version") == CACHE_VERSION:
                files = data.get("files")
                if isinstance(files, dict):
                    self._entries = {k: v for k, v in files.items() if isinstance(v, dict)}
                    self.path = Path(candidate)
                    return

    def lookup(self, path: Path, size: int, mtime_ns: int) -> Digests | None:
        """Return the remembered digests of path if it has not changed since."""
        key = os.path.realpath(path)
        with self._lock:
            entry = self._entries.get(key)
        if entry and entry.get("size") == size and entry.get("mtime_ns") == mtime_ns:
            with contextlib.suppress(KeyError, TypeError):
                return Digests(str(entry["sha256"]), str(entry["blob_sha1"]))
        return None

    def digests(self, path: Path, size: int, mtime_ns: int) -> Digests:
        """Return path's digests, hashing it (once, even under concurrent callers) if needed."""
        known = self.lookup(path, size, mtime_ns)
        if known is not None:
            return known
        key = os.path.realpath(path)
        with self._lock:
            file_lock = self._file_locks.setdefault(key, threading.Lock())
        with file_lock:
            known = self.lookup(path, size, mtime_ns)
            if known is not None:
                return known
            digests = hash_file(path, size)
            entry = {"size": size, "mtime_ns": mtime_ns, **digests.__dict__}
            with self._lock:
                self.hashed += 1
                self._entries[key] = entry
            self._save()
            return digests

    def _save(self) -> None:
        # Writes are rare (one per newly hashed file), so rewriting the whole file stays cheap;
        # the save lock keeps an older snapshot from landing after a newer one.
        with self._save_lock:
            with self._lock:
                value = {"version": CACHE_VERSION, "files": dict(self._entries)}
            self._write(value)

    def _write(self, value: dict) -> None:
        ordered = [self.path] if self.path is not None else []
        ordered += [c for c in self._candidates if c != self.path]
        for candidate in ordered:
            try:
                atomic_write_json(Path(candidate), value)
            except OSError:
                continue
            self.path = Path(candidate)
            return
