"""Put hub files in place as symlinks, and turn duplicate copies into symlinks (dedupe).

A link always points at an absolute path. For a file of a Hugging Face cache the target is the
blob (`.../blobs/<sha256>`), not the snapshot path: the blob is the content the match proved, it
is reached in one hop, and it stays when huggingface_hub's cache cleanup drops an old snapshot
folder that still shares the blob with a newer revision.
Nothing here ever writes into the hub.
"""

from __future__ import annotations

import enum
import os
import stat as stat_module
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from wandown import digests, fsutil
from wandown.digests import BLAKE3, SHA256, Progress
from wandown.hub.index import HubIndex, ModelHubError
from wandown.hub.scan import WORKING_FOLDERS
from wandown.hub.sidecar import FileStat


class LinkOutcome(str, enum.Enum):
    """What link_into_place did."""

    LINKED = "linked"  # nothing was at the destination
    ALREADY = "already-linked"  # the destination already pointed at the hub file
    REPAIRED = "repaired"  # asked to: a broken link, or a link to something else, was replaced


def link_into_place(hub_file: Path, dest: Path, replace_link: bool = False) -> LinkOutcome:
    """Make dest a symlink to hub_file (absolute), atomically, never following dest.

    Nothing is ever replaced unless asked: a file or a link the user (or Wan2GP) put at dest,
    even while the hub file was being hashed, is theirs. Raises FileExistsError when anything
    but the very link wanted is at dest (a link only with replace_link), and ModelHubError when
    hub_file is missing or is itself a broken link.
    """
    target = os.path.abspath(hub_file)
    if not os.path.isfile(target):
        raise ModelHubError(f"hub file {target} is missing or a broken link; not linking to it")
    dest = Path(os.path.abspath(dest))
    try:
        current = os.lstat(dest)
    except FileNotFoundError:
        current = None
    if current is not None and not stat_module.S_ISLNK(current.st_mode):
        raise FileExistsError(f"{dest} is a real file; not replacing it with a link")
    if current is not None and os.readlink(dest) == target:
        return LinkOutcome.ALREADY
    if current is not None and not replace_link:
        raise FileExistsError(f"{dest} is a link to {os.readlink(dest)}; not replacing it")
    fsutil.atomic_symlink(Path(target), dest, replace_link=replace_link)
    return LinkOutcome.LINKED if current is None else LinkOutcome.REPAIRED


@dataclass
class DedupeReport:
    """Files replaced by links to identical hub files, and the disk space that freed."""

    replaced: list[tuple[Path, Path]] = field(default_factory=list)  # (file, hub file)
    bytes_reclaimed: int = 0


def dedupe(
    folder: str | os.PathLike[str],
    index: HubIndex,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    protected: Iterable[Path] = (),
) -> DedupeReport:
    """Replace real files under folder that are byte-identical to hub files with links to them.

    Identity is size, then BLAKE3 (sha256 when the blake3 package is missing, or when only a hub
    file's sha256 is remembered); a HF blob's name is never trusted, its bytes are. Hub files
    are only read, never touched. A hub entry that resolves into folder or into a protected
    folder (Wan2GP's checkpoint roots) is one of the copies, not a hub file: a hub may reach
    Wan2GP's ckpts through a folder link.
    """
    root = os.path.abspath(folder)
    if fsutil.is_inside(root, index.hub_dir):
        raise ModelHubError(
            f"{root} is inside the hub {index.hub_dir}; dedupe never changes the hub"
        )
    guarded = [os.path.realpath(root), *(os.path.realpath(place) for place in protected)]
    hub_stat = os.stat(index.hub_dir)
    report = DedupeReport()
    replaced: set[tuple[int, int]] = set()
    try:
        for path, stat in _real_files(root, (hub_stat.st_dev, hub_stat.st_ino), index):
            if cancel is not None and cancel.is_set():
                break
            hub_key = identical_hub_file(path, stat, index, guarded, progress, cancel)
            target = safe_target(index, hub_key, guarded, replaced) if hub_key else None
            if target is not None and replace_with_link(path, FileStat.of(stat), target):
                replaced.add((stat.st_dev, stat.st_ino))
                report.replaced.append((Path(path), target))
                if stat.st_nlink == 1:
                    report.bytes_reclaimed += stat.st_size
    except digests.HashingCancelled:
        pass
    finally:
        index.save()
    return report


def safe_target(
    index: HubIndex, key: str, guarded: list[str], replaced: set[tuple[int, int]]
) -> Path | None:
    """Return the link target for hub file key if it is still the real file that was hashed.

    Proven right before the swap, so a copy is never replaced by a link that ends in itself, in
    another copy, in a file already replaced, or in a file that changed since it was hashed.
    """
    target = index.link_target(key)
    real = os.path.realpath(target)
    try:
        now = os.lstat(real)
    except OSError as exc:
        index.notice(f"not linking to hub file {target}: {exc.strerror or exc}")
        return None
    if index.reaches_into(key, guarded):
        why = f"it is {real}, inside the folder being deduped or a Wan2GP checkpoint folder"
    elif not stat_module.S_ISREG(now.st_mode):
        why = f"it resolves to {real}, which is not a regular file"
    elif (now.st_dev, now.st_ino) in replaced:
        why = "it is a file this run already replaced"
    elif FileStat.of(now) != index.files[key]:
        why = "it changed since it was hashed; run again"
    else:
        return target
    index.notice(f"not linking to hub file {target}: {why}")
    return None


def _is_working_folder(entry: os.DirEntry[str]) -> bool:
    """Tell whether a folder holds working files (wandown's, git's, Python's), never models."""
    return entry.name in WORKING_FOLDERS or os.path.isfile(os.path.join(entry.path, "pyvenv.cfg"))


def _real_files(
    folder: str, hub_identity: tuple[int, int], index: HubIndex
) -> Iterator[tuple[str, os.stat_result]]:
    """Yield (path, lstat) of real files under folder whose size some hub file has.

    Links are never followed and working folders never entered: a `.part` or a git object
    replaced by a link would be written through it into the hub.
    """
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as listing:
                entries = list(listing)
        except OSError as exc:
            index.notice(f"skipping {current}: {exc.strerror or exc}")
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    if (st.st_dev, st.st_ino) != hub_identity and not _is_working_folder(entry):
                        stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    if st.st_size > 0 and index.has_size(st.st_size):
                        yield entry.path, st
            except OSError as exc:
                index.notice(f"skipping {entry.path}: {exc.strerror or exc}")


def identical_hub_file(
    path: str,
    stat: os.stat_result,
    index: HubIndex,
    guarded: list[str],
    progress: Progress | None,
    cancel: threading.Event | None,
) -> str | None:
    """Return the key of a hub file byte-identical to path (size, then BLAKE3), or None.

    Hub entries that resolve into guarded folders (the copies' own folders) never count.
    """
    compare = BLAKE3 if index.blake3_available else SHA256
    mine: dict[str, str] | None = None
    for key in index.candidates(stat.st_size, outside=guarded):
        hub_stat = index.files[key]
        if (hub_stat.dev, hub_stat.ino) == (stat.st_dev, stat.st_ino):
            continue  # the same file (a hard link): a symlink would free nothing
        if mine is None:
            try:
                mine = digests.hash_file(
                    Path(path),
                    {SHA256, BLAKE3} if index.blake3_available else {SHA256},
                    progress=progress,
                    cancel=cancel,
                    blake3_factory=digests.load_blake3(),
                )
            except OSError as exc:
                index.notice(f"cannot read {path}: {exc.strerror or exc}")
                return None
            if not mine:
                return None
        theirs = index.known_digests(key)
        kind = compare if compare in theirs else SHA256 if SHA256 in theirs else compare
        if kind not in theirs:
            theirs = index.digests(key, {kind}, progress=progress, cancel=cancel)
        if kind in theirs and theirs[kind] == mine.get(kind):
            return key
    return None


def replace_with_link(path: str, before: FileStat, target: Path) -> bool:
    """Swap the file at path for a link to target, unless it changed since it was hashed."""
    try:
        now = os.lstat(path)
    except OSError:
        return False
    if not stat_module.S_ISREG(now.st_mode) or FileStat.of(now) != before:
        return False
    fsutil.atomic_symlink(target, Path(path), replace_file=True)
    return True
