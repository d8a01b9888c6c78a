"""The hash sidecar: digests of hub files, kept in wandown's cache folder, never in the hub.

One JSON file per hub, keyed by the file's path inside the hub (absolute for files outside it).
An entry is trusted only while the file's size, mtime_ns, ctime_ns, inode and device are
unchanged, so a replaced or edited file is hashed again: ctime_ns too, because an in-place rewrite
can put the old mtime back (touch -r, cp -p, rsync -t --inplace, 2 s mtime granularity on FAT) but
no user call can set ctime. An entry from an older wandown lacks ctime_ns and is simply re-hashed.
Two wandown processes may save at once: each takes an exclusive flock on a lock file beside the
sidecar, re-reads it and merges before writing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from wandown import fsutil, jsonfile

FORMAT_VERSION = 1


class FileStat(NamedTuple):
    """The facts that tell whether a file changed since it was hashed."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        # tuple.__new__ skips the generated __new__: a third faster, called once per hub file.
        facts = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
        return tuple.__new__(cls, facts)


def sidecar_path_for(hub_dir: str | os.PathLike[str]) -> Path:
    """Return the sidecar for a hub: cache_dir()/hub/<tail>-<digest of its absolute path>.json."""
    absolute = os.path.abspath(hub_dir)
    digest = hashlib.sha256(absolute.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    tail = "-".join(part for part in absolute.split(os.sep)[-2:] if part) or "root"
    tail = re.sub(r"[^A-Za-z0-9._-]+", "_", tail)[:60]
    return fsutil.cache_dir() / "hub" / f"{tail}-{digest}.json"


Entry = dict[str, object]
"""One file's record: its FileStat fields and {kind: hex digest}, as read from JSON."""


def _whole_number(value: object) -> int:
    if isinstance(value, (int, float, str)):
        return int(value)
    raise TypeError(f"not a number: {value!r}")


def _entry_stat(entry: Entry) -> FileStat | None:
    try:
        return FileStat(*(_whole_number(entry[name]) for name in FileStat._fields))
    except (KeyError, TypeError, ValueError, OverflowError):
        return None


class HashSidecar:
    """Digests remembered between runs for one hub."""

    def __init__(
        self, path: Path, hub_dir: str | os.PathLike[str], notice: Callable[[str], None]
    ) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.hub_dir = os.path.abspath(hub_dir)
        self._notice = notice
        self._entries: dict[str, Entry] = self._read()
        self._changed: dict[str, Entry] = {}

    def _read(self) -> dict[str, Entry]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            self._notice(
                f"cannot read the hash sidecar {self.path}: {exc.strerror}; starting afresh"
            )
            return {}
        except UnicodeDecodeError:
            text = ""
        try:
            data = jsonfile.loads(text, self.path)
        except ValueError as exc:
            aside = jsonfile.move_aside(self.path)
            kept = f"; moved to {aside}" if aside else ""
            self._notice(f"the hash sidecar is not valid JSON ({exc}){kept}; starting afresh")
            return {}
        if not isinstance(data, dict):
            data = {}
        files = data.get("files")
        if data.get("version") != FORMAT_VERSION or not isinstance(files, dict):
            self._notice(f"the hash sidecar {self.path} has an unknown format; starting afresh")
            return {}
        return {key: value for key, value in files.items() if isinstance(value, dict)}

    def __len__(self) -> int:
        return len(self._entries)

    def digests(self, key: str, stat: FileStat) -> dict[str, str]:
        """Return the digests remembered for key, or {} when the file changed since."""
        entry = self._entries.get(key)
        if entry is None or _entry_stat(entry) != stat:
            return {}
        # A hand-edited or damaged value is no digest: counting it as known would mean the
        # file is never read, so never proven.
        return {
            kind: value
            for kind, value in entry.items()
            if kind not in FileStat._fields and isinstance(value, str)
        }

    def record(self, key: str, stat: FileStat, digests: dict[str, str]) -> None:
        """Remember digests for key (merged with what is known for the same unchanged file)."""
        entry: Entry = {**self.digests(key, stat), **digests, **stat._asdict()}
        self._entries[key] = entry
        self._changed[key] = entry

    def save(self, keep: Callable[[str], bool] | None = None) -> None:
        """Merge this run's digests into the file on disk under an exclusive lock.

        keep, when given, tells which entries are still wanted (the others belong to files that
        are gone). A failure to write only costs hashing again next time: it becomes a notice.
        """
        if not self._changed and (keep is None or all(map(keep, self._entries))):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.lock_path, "a") as lock:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
                try:
                    merged = self._read()
                    for key, entry in self._changed.items():
                        theirs = merged.get(key)
                        if theirs is not None and _entry_stat(theirs) == _entry_stat(entry):
                            merged[key] = {**theirs, **entry}
                        else:
                            merged[key] = entry
                    if keep is not None:
                        merged = {k: v for k, v in merged.items() if keep(k)}
                    fsutil.atomic_write_json(
                        self.path, {"version": FORMAT_VERSION, "hub": self.hub_dir, "files": merged}
                    )
                finally:
                    with contextlib.suppress(OSError):
                        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        except OSError as exc:
            self._notice(f"cannot save the hash sidecar {self.path}: {exc}")
            return
        self._entries = merged
        self._changed = {}
