"""Which catalog files are already in place: stat only, never a read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from wandown.catalog.records import FileRecord

EXISTS = "exists"
LINKED = "linked"
MISSING = "missing"


def path_status(path: Path) -> str:
    """Return exists, linked (a symlink whose target exists) or missing (including broken links)."""
    try:
        info = os.lstat(path)
    except OSError:
        return MISSING
    if stat.S_ISLNK(info.st_mode):
        try:
            target = os.stat(path)
        except OSError:
            return MISSING
        return LINKED if stat.S_ISREG(target.st_mode) else MISSING
    return EXISTS if stat.S_ISREG(info.st_mode) else MISSING


def update_status(record: FileRecord, places: list[Path]) -> None:
    """Set the record's status from the first place that holds the file."""
    for place in places:
        status = path_status(place)
        if status != MISSING:
            record.status = status
            record.found_at = place
            return
    record.status = MISSING
    record.found_at = None
