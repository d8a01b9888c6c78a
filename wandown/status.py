"""The one status vocabulary, from the catalog's presence check to the views.

A status's value is the lower-case word JSON carries (``--list --json``'s ``status``, the
engine's event states, the theme's ``status.*`` roles); its label is the word a person reads in
the table, the interface and the log. Nothing else spells a status.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Status(str, enum.Enum):
    """Where one destination file stands."""

    PENDING = "pending"
    EXISTS = "exists"
    LINKED = "linked"
    MISSING = "missing"
    HASHING = "hashing"
    LINKING = "linking"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    COMPLETE = "complete"
    FAILED = "failed"
    BUSY = "busy"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"
    WAITING_DISK = "waiting_disk"  # queued, held back while its disk is under min_free_gb

    def __str__(self) -> str:  # as 3.11's StrEnum: the value, never "Status.MISSING"
        return self.value

    @property
    def label(self) -> str:
        """Return the word a person reads: "Missing", "Downloading"."""
        return _LABELS.get(self.value, self.value.capitalize())

    @property
    def present(self) -> bool:
        """Tell whether the file is in place (found, linked or just downloaded)."""
        return self in PRESENT

    @property
    def active(self) -> bool:
        """Tell whether work on the file is queued or running."""
        return self in ACTIVE


_LABELS = {"waiting_disk": "Waiting for disk space"}
PRESENT = frozenset({Status.EXISTS, Status.LINKED, Status.COMPLETE})
ACTIVE = frozenset(
    {
        Status.PENDING,
        Status.HASHING,
        Status.LINKING,
        Status.DOWNLOADING,
        Status.VERIFYING,
        Status.BUSY,
        Status.WAITING_DISK,
    }
)


class ModelState(str, enum.Enum):
    """Where one model stands: every file it needs present, some, or none."""

    READY = "ready"
    PARTIAL = "partial"
    MISSING = "missing"

    def __str__(self) -> str:
        return self.value

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @classmethod
    def of(cls, present: int, needed: int) -> ModelState:
        """Return the state of a model with present of its needed files in place."""
        if present >= needed:
            return cls.READY
        return cls.PARTIAL if present else cls.MISSING


def tally(statuses: Iterable[Status]) -> str:
    """Say how many files ended in each status, present ones first: "3 files: 2 complete, ..."."""
    counts: dict[Status, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (not item[0].present, item[0].label))
    parts = ", ".join(f"{count} {status.value}" for status, count in ranked)
    total = sum(counts.values())
    noun = "file" if total == 1 else "files"
    return f"{total} {noun}: {parts}"
