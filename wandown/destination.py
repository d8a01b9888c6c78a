"""Where a destination really lands: refuse one that resolves into a hub, or a broken link.

The session asks before it links or downloads anything (and the dry run asks too), so a
Wan2GP folder that is a link into the hub never gets downloads or `.wandown/` written into
the hub, and a link whose target vanished (an unmounted hub) is never silently replaced.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Iterable
from pathlib import Path

from wandown import fsutil


def problem(
    path: Path,
    dest: str,
    hub_folders: Iterable[Path],
    hub_folder_ids: Collection[tuple[int, int]] = (),
) -> str | None:
    """Return why nothing may be written at path (named dest in messages), or None if it is safe.

    hub_folder_ids are the (device, inode) of every folder the hub scan entered: a folder of
    the hub bind-mounted into Wan2GP has another path but the same identity.
    """
    try:
        info = os.lstat(path)
    except OSError:
        info = None  # absent, or its folder is unusable: the engine says why when it writes
    if info is not None:
        in_the_way = _in_the_way(path, dest, info)
        if in_the_way is not None:
            return in_the_way
    else:
        broken = _broken_folder_link(path, dest)
        if broken is not None:
            return broken
    return in_hub(path, dest, hub_folders, hub_folder_ids)


def in_hub(
    path: Path,
    dest: str,
    hub_folders: Iterable[Path],
    hub_folder_ids: Collection[tuple[int, int]] = (),
) -> str | None:
    """Say why path lies inside the hub (by its real path or its folders' identity), or None."""
    real_folder = os.path.realpath(path.parent)
    for hub in hub_folders:
        if fsutil.is_inside(real_folder, hub):
            return (
                f"{dest} would be written inside the hub {hub} (its folder {path.parent} "
                f"resolves to {real_folder}); wandown never writes into a hub: make that folder "
                "a real folder outside the hub, or link single files instead"
            )
    if hub_folder_ids and fsutil.folder_ids(path.parent) & set(hub_folder_ids):
        return (
            f"{dest} would be written inside the hub: its folder {path.parent} is a folder of "
            "the hub mounted there (a bind mount or a volume); wandown never writes into a hub: "
            "make that folder a real folder outside the hub, or link single files instead"
        )
    return None


def _in_the_way(path: Path, dest: str, info: os.stat_result) -> str | None:
    """Say what blocks path when it is a broken link, a link to a non-file, or not a file."""
    if stat.S_ISLNK(info.st_mode):
        target = _link_text(path)
        try:
            pointed = os.stat(path)
        except OSError:
            return (
                f"{dest} is a link to {target}, which is missing (is the hub mounted?); "
                "remove the link to download it"
            )
        if not stat.S_ISREG(pointed.st_mode):
            return (
                f"{dest} is a link to {target}, which is not a file; remove the link to download it"
            )
        return None
    if stat.S_ISDIR(info.st_mode):
        return f"{dest} is a folder; move it away to download the file"
    if not stat.S_ISREG(info.st_mode):
        return f"{dest} is not a regular file; remove it to download the file"
    return None


def _broken_folder_link(path: Path, dest: str) -> str | None:
    """Say which folder on the way to path is a link to a missing folder (an unmounted hub).

    Making the folders would fail (the link is in the way) or recreate the link's target.
    """
    for folder in reversed(path.parents):
        try:
            info = os.lstat(folder)
        except OSError:
            return None  # a folder that is simply not there yet: it is made when written
        if stat.S_ISLNK(info.st_mode) and not os.path.exists(folder):
            return (
                f"{dest} cannot be written: its folder {folder} is a link to "
                f"{_link_text(folder)}, which is missing (is the hub mounted?); mount it, or "
                "replace the link with a real folder"
            )
    return None


def _link_text(path: Path) -> str:
    try:
        return os.path.join(path.parent, os.readlink(path))
    except OSError:
        return "a target that cannot be read"
