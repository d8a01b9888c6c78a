"""The status store: the one mutable object the session's threads and the views share.

The session's threads (the event pump, the linker) write it under its lock; views read immutable
snapshots. A version number and a condition let a view sleep until something
changes instead of polling.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypedDict

from wandown.diskplan import Space
from wandown.status import Status

if TYPE_CHECKING:
    from typing_extensions import Unpack


class ViewChanges(TypedDict, total=False):
    """The fields of a FileView that work on it changes."""

    size: int | None
    status: Status
    done: int
    speed: float
    message: str
    link_source: str | None
    endpoint: str | None
    failover: str


class HeaderChanges(TypedDict, total=False):
    """The header facts that change during a run."""

    limit_kb: float | None
    disks: tuple[Space, ...]


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
    status: Status = Status.MISSING
    done: int = 0
    speed: float = 0.0
    message: str = ""
    link_source: str | None = None
    endpoint: str | None = None  # the endpoint its download came from (this run or on record)
    failover: str = ""  # its last move between endpoints: "from A to B: why"
    linkable: bool = False  # the hub proves it holds the file: a d links it, fetching nothing
    partial: int = 0  # bytes an earlier run already fetched into its partial
    device: int | None = None  # the file system it lands on (see Header.disks)

    @property
    def to_fetch(self) -> int:
        """Return the bytes a start would still download: 0 once present or linkable."""
        if self.status.present or self.linkable or self.size is None:
            return 0
        return max(0, self.size - max(self.partial, self.done))

    feature: str | None = None  # the run-time feature group of a file no model needs

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
    code_origin: str = ""  # "learned" from the install's Wan2GP, or "shipped <commit>"
    hub: str | None = None
    hub_files: int = 0
    hub_links: int = 0
    hubs: tuple[tuple[str, str, int], ...] = ()  # (folder, kind, file count) of each hub
    online: bool = True
    limit_kb: float | None = None
    disks: tuple[Space, ...] = ()  # free space of the file systems the files land on
    reserve: int = 0  # bytes every disk keeps free (min_free_gb)
    gpu: str = ""  # the GPU's bf16 answer in words, e.g. "GPU fp16 (cc 7.5)"


@dataclass(frozen=True)
class ReclaimRow:
    """One file the Reclaim view lists: its kind's label, the bytes it frees, its place."""

    kind: str
    size: int
    path: str
    link: bool = False


@dataclass(frozen=True)
class ReclaimList:
    """What the Reclaim view shows: nothing yet while it is being found, then the rows."""

    rows: tuple[ReclaimRow, ...] = ()
    total: int = 0
    ready: bool = False


@dataclass(frozen=True)
class Snapshot:
    """An immutable copy of the store at one version."""

    version: int
    header: Header
    files: dict[str, FileView]
    models: dict[str, str] = field(default_factory=dict)
    notices: tuple[str, ...] = ()
    reclaim: ReclaimList | None = None
    families: dict[str, str] = field(default_factory=dict)  # model id -> architecture

    @property
    def total_speed(self) -> float:
        return sum(f.speed for f in self.files.values() if f.status is Status.DOWNLOADING)


class StatusStore:
    """Per-file state behind a lock, with a version that views can wait on."""

    def __init__(
        self,
        files: dict[str, FileView],
        header: Header,
        models: dict[str, str],
        families: dict[str, str] | None = None,
    ) -> None:
        self._files = dict(files)
        self._header = header
        self._models = dict(models)
        self._families = dict(families or {})
        self._notices: list[str] = []
        self._reclaim: ReclaimList | None = None
        self._version = 0
        self._changed = threading.Condition()

    def update(self, dest: str, **changes: Unpack[ViewChanges]) -> None:
        """Change some fields of one file's view."""
        with self._changed:
            current = self._files.get(dest)
            if current is None:
                return
            self._files[dest] = replace(current, **changes)
            self._bump()

    def set_header(self, **changes: Unpack[HeaderChanges]) -> None:
        with self._changed:
            self._header = replace(self._header, **changes)
            self._bump()

    def replace_all(
        self,
        files: dict[str, FileView],
        header: Header,
        models: dict[str, str],
        families: dict[str, str] | None = None,
    ) -> None:
        """Swap in a freshly loaded catalog (after a reload)."""
        with self._changed:
            self._files = dict(files)
            self._header = header
            self._models = dict(models)
            self._families = dict(families or {})
            self._bump()

    def add_notice(self, message: str) -> None:
        with self._changed:
            self._notices.append(message)
            del self._notices[:-50]
            self._bump()

    def set_reclaim(self, reclaim: ReclaimList | None) -> None:
        """Publish the Reclaim view's list (None: no list, the view has nothing to show)."""
        with self._changed:
            self._reclaim = reclaim
            self._bump()

    def snapshot(self) -> Snapshot:
        with self._changed:
            return Snapshot(
                self._version,
                self._header,
                dict(self._files),
                dict(self._models),
                tuple(self._notices),
                reclaim=self._reclaim,
                families=dict(self._families),
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
