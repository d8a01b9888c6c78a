"""Which catalog files are already in place: stat only, never a read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from wandown.catalog.records import Presence
from wandown.status import Status


def path_status(path: Path) -> Status:
    """Return exists, linked (a symlink whose target exists) or missing (including broken links)."""
    try:
        info = os.lstat(path)
    except OSError:
        return Status.MISSING
    if stat.S_ISLNK(info.st_mode):
        try:
            target = os.stat(path)
        except OSError:
            return Status.MISSING
        return Status.LINKED if stat.S_ISREG(target.st_mode) else Status.MISSING
    return Status.EXISTS if stat.S_ISREG(info.st_mode) else Status.MISSING


def locate(places: list[Path]) -> Presence:
    """Return the presence of a file from the first of its places that holds it."""
    for place in places:
        status = path_status(place)
        if status is not Status.MISSING:
            return Presence(status, place)
    return Presence()
