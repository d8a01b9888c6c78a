"""Where each downloaded file came from (which endpoint), remembered across runs.

`--list` and the interface name a file's endpoint after the run that fetched it has ended. An
entry holds the file's identity (size, mtime, inode) when it was placed: a file replaced since
(by hand, by a link from the hub) no longer claims that endpoint. Two processes recording at
once may lose one entry (the last writer wins): this is a note for people, never a decision.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

from wandown.fsutil import atomic_write_json, cache_dir
from wandown.jsonfile import read_json

FILE_NAME = "fetched-from.json"
MAX_ENTRIES = 20_000  # the oldest go first; a lab's catalog is a few hundred files


def default_origins_path() -> Path:
    return cache_dir() / FILE_NAME


def _identity(path: Path) -> list[int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return [info.st_size, info.st_mtime_ns, info.st_ino]


class Origins:
    """The record of downloads' endpoints in one file; every method is safe from any thread."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_origins_path()
        self._lock = threading.Lock()

    def _entries(self) -> dict[str, Any]:
        try:
            raw = read_json(self.path)
        except (OSError, ValueError):  # missing or damaged: a note, not worth a message
            return {}
        return raw if isinstance(raw, dict) else {}

    def record(self, dest: Path, endpoint: str) -> None:
        """Note that dest (just placed) came from endpoint."""
        identity = _identity(dest)
        if identity is None:
            return
        with self._lock:
            entries = self._entries()
            entries.pop(str(dest), None)
            entries[str(dest)] = {"endpoint": endpoint, "identity": identity}
            while len(entries) > MAX_ENTRIES:
                entries.pop(next(iter(entries)))
            with contextlib.suppress(OSError):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_json(self.path, entries)

    def endpoints(self, dests: dict[str, Path]) -> dict[str, str]:
        """Return {dest key: endpoint} for the files that are still the ones recorded."""
        with self._lock:
            entries = self._entries()
        found = {}
        for key, path in dests.items():
            entry = entries.get(str(path))
            if not isinstance(entry, dict) or not isinstance(entry.get("endpoint"), str):
                continue
            if entry.get("identity") == _identity(path):
                found[key] = entry["endpoint"]
        return found
