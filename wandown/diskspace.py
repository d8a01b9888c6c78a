"""The free-space probe the disk plan is fed by: which file system a path lands on, how full.

A destination usually does not exist yet: its nearest existing folder (links followed, as a
write would follow them) tells the file system. The mount point is found by walking up the real
path while the device stays the same, so messages name "/mnt/models", not a deep folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from wandown.diskplan import Space
from wandown.engine.partial import PartialPaths, load_state

Probe = Callable[[Path], Space | None]


def existing_folder(path: Path) -> Path | None:
    """Return the nearest folder at or above path that exists (following links)."""
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return None


def device_of(path: Path) -> int | None:
    folder = existing_folder(path)
    if folder is None:
        return None
    try:
        return folder.stat().st_dev
    except OSError:
        return None


def mount_point(folder: Path) -> str:
    """Return where the file system holding folder is mounted."""
    real = Path(os.path.realpath(folder))
    device = real.stat().st_dev
    for parent in real.parents:
        try:
            if parent.stat().st_dev != device:
                return str(real)
        except OSError:
            return str(real)
        real = parent
    return str(real)


def space_of(path: Path) -> Space | None:
    """Probe the file system a destination lands on; None when nothing of it can be seen."""
    folder = existing_folder(path)
    if folder is None:
        return None
    try:
        stats = os.statvfs(folder)
        device = folder.stat().st_dev
        return Space(device, mount_point(folder), stats.f_bavail * stats.f_frsize)
    except OSError:
        return None


def partial_bytes(place: Path, size: int, sha256: str | None) -> int:
    """Return how many bytes of a destination an earlier run already fetched (its partial).

    Only a partial of this very file counts: one of another version is discarded on resume.
    """
    paths = PartialPaths.for_dest(place)
    if not paths.state.exists():
        return 0
    state = load_state(paths.state)
    if state is None or state.size != size:
        return 0
    if sha256 is not None and (state.sha256 or "").lower() != sha256.lower():
        return 0
    return min(size, state.done.total())


def probe_places(
    places: Iterable[Path], probe: Probe = space_of
) -> tuple[dict[Path, int], dict[int, Space]]:
    """Return the device of each place and what the probe sees of each device, once a folder."""
    by_folder: dict[Path, Space | None] = {}
    devices: dict[Path, int] = {}
    spaces: dict[int, Space] = {}
    for place in places:
        folder = place.parent
        if folder not in by_folder:
            by_folder[folder] = probe(folder)
        space = by_folder[folder]
        if space is not None:
            devices[place] = space.device
            spaces[space.device] = space
    return devices, spaces
