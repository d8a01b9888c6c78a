"""The status store: the one mutable object the engine's events and the views share.

Workers never touch it directly: the session applies engine events here from a single thread, and
views read immutable snapshots. A version number and a condition let a view sleep until something
changes instead of polling.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace

# Display statuses, as in the original tool plus the steps wandown adds.
PENDING = "Pending"
EXISTS = "Exists"
LINKED = "Linked"
MISSING = "Missing"
HASHING = "Hashing"
LINKING = "Linking"
DOWNLOADING = "Downloading"
VERIFYING = "Verifying"
COMPLETE = "Complete"
FAILED = "Failed"
BUSY = "Busy"
CANCELLED = "Cancelled"
UNKNOWN = "Unknown"

PRESENT = frozenset({EXISTS, LINKED, COMPLETE})
ACTIVE = frozenset({PENDING, HASHING, LINKING, DOWNLOADING, VERIFYING, BUSY})


def tally(statuses: list[str]) -> str:
    """Say how many files ended in each status, present ones first: "3 files: 2 complete, ..."."""
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (item[0] not in PRESENT, item[0]))
    parts = ", ".join(f"{count} {status.lower()}" for status, count in ranked)
    noun = "file" if len(statuses) == 1 else "files"
    return f"{len(statuses)} {noun}: {parts}"


@dataclass(frozen=True)
class FileView:
    """What a view may know of one destination file."""

    dest: str
    file_name: str
    folder: str
    role: str
    needed_by: tuple[str, ...]
    listed_by: tuple[str, ...]
    url: str
    size: int | None = None
    status: str = MISSING
    done: int = 0
    speed: float = 0.0
    message: str = ""
    link_source: str | None = None

    @property
    def fraction(self) -> float | None:
        """Return the share downloaded (0..1) while a size is known."""
        if not self.size:
            return None
        return min(1.0, self.done / self.size)


@dataclass(frozen=True)
class Header:
    """The facts a header line shows."""

    catalog_source: str = ""
    model_count: int = 0
    hub: str | None = None
    hub_files: int = 0
    hub_links: int = 0
    online: bool = True
    limit_kb: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """An immutable copy of the store at one version."""

    version: int
    header: Header
    files: dict[str, FileView]
    models: dict[str, str] = field(default_factory=dict)
    notices: tuple[str, ...] = ()

    @property
    def total_speed(self) -> float:
        return sum(f.speed for f in self.files.values() if f.status == DOWNLOADING)


class StatusStore:
    """Per-file state behind a lock, with a version that views can wait on."""

    def __init__(self, files: dict[str, FileView], header: Header, models: dict[str, str]):
        self._files = dict(files)
        self._header = header
        self._models = dict(models)
        self._notices: list[str] = []
        self._version = 0
        self._changed = threading.Condition()

    def update(self, dest: str, **changes) -> None:
        """Change some fields of one file's view."""
        with self._changed:
            current = self._files.get(dest)
            if current is None:
                return
            self._files[dest] = replace(current, **changes)
            self._bump()

    def set_header(self, **changes) -> None:
        with self._changed:
            self._header = replace(self._header, **changes)
            self._bump()

    def replace_all(
        self, files: dict[str, FileView], header: Header, models: dict[str, str]
    ) -> None:
        """Swap in a freshly loaded catalog (after a reload)."""
        with self._changed:
            self._files = dict(files)
            self._header = header
            self._models = dict(models)
            self._bump()

    def add_notice(self, message: str) -> None:
        with self._changed:
            self._notices.append(message)
            del self._notices[:-50]
            self._bump()

    def snapshot(self) -> Snapshot:
        with self._changed:
            return Snapshot(
                self._version,
                self._header,
                dict(self._files),
                dict(self._models),
                tuple(self._notices),
            )

    @property
    def version(self) -> int:
        with self._changed:
            return self._version

    def wait_for_change(self, seen_version: int, timeout: float | None) -> bool:
        """Block until the version passes seen_version or timeout; return True on a change."""
        with self._changed:
            return self._changed.wait_for(lambda: self._version != seen_version, timeout)

    def _bump(self) -> None:
        self._version += 1
        self._changed.notify_all()
