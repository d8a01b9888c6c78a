"""Carry out a reclaim plan: delete or link each file, re-checked right before it is touched.

Each file is removed through its folder's descriptor, once that folder is proven to be the one
surveyed (device and inode) and the file (or link) is unchanged (lstat: size, mtime, ctime,
inode, device); unlink never follows a link, so a listed link goes and its target stays. A
file that became needed (the catalog is read again first) is kept. Working files are removed
under their download's lock, so a download that starts meanwhile finds them gone or waits.
"""

from __future__ import annotations

import os
import stat as stat_module
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wandown.engine.partial import PARTIAL_FOLDER, FileLock, WorkingFolder
from wandown.hub import HubSet
from wandown.hub.link import replace_with_link, safe_target
from wandown.hub.sidecar import FileStat
from wandown.reclaim.plan import Item, Kind, Plan, shown_path
from wandown.reclaim.survey import Found
from wandown.units import human_bytes

Say = Callable[[str], None]


@dataclass
class Outcome:
    deleted: int = 0
    linked: int = 0
    kept: int = 0
    freed: int = 0
    emptied: set[str] = field(default_factory=set)  # folders a deletion was made in
    events: list[dict[str, object]] = field(default_factory=list)  # one per file, for JSON

    def record(self, action: str, shown: str, detail: str = "", size: int = 0) -> None:
        self.events.append({"path": shown, "action": action, "size": size, "detail": detail})

    def to_json(self) -> dict[str, object]:
        return {
            "results": self.events,
            "reclaimed": self.freed,
            "deleted": self.deleted,
            "linked": self.linked,
            "kept": self.kept,
        }

    def summary(self) -> str:
        done = f"{self.deleted} deleted, {self.linked} linked to the hub"
        kept = f"; {self.kept} kept (see above)" if self.kept else ""
        return f"reclaimed {human_bytes(self.freed)}: {done}{kept}"


def apply(
    plan: Plan,
    root: Path,
    hubs: HubSet | None,
    needed_now: frozenset[str],
    guarded: list[str],
    say: Say,
    roots: frozenset[str] = frozenset(),
) -> Outcome:
    """Delete or link every item of plan that is still what was listed; report each one.

    A folder below one of roots that a deletion left empty goes too (never a root itself).
    """
    outcome = Outcome()
    replaced: set[tuple[int, int]] = set()
    partials: dict[tuple[str, str], list[Item]] = {}
    for item in plan.items:
        shown = shown_path(item.path, root)
        if item.group is not None:
            partials.setdefault(item.group, []).append(item)
        elif item.kind is Kind.HUB_COPY:
            _link(item, shown, hubs, guarded, replaced, outcome, say)
        elif os.path.normpath(item.path) in needed_now:
            _kept(outcome, say, shown, "a model needs it now")
        else:
            _delete(item, shown, outcome, say)
    for (folder, stem), items in partials.items():
        _delete_working(Path(folder), stem, items, root, outcome, say)
    _remove_empty(outcome.emptied, roots, root, outcome, say)
    return outcome


def _remove_empty(
    folders: set[str], roots: frozenset[str], root: Path, outcome: Outcome, say: Say
) -> None:
    """Remove folders left empty, and their parents while empty, up to (not including) a root."""
    for folder in sorted(folders, key=len, reverse=True):
        current = folder
        while current not in roots and any(current.startswith(r + os.sep) for r in roots):
            try:
                info = os.lstat(current)
                if not stat_module.S_ISDIR(info.st_mode):
                    break
                os.rmdir(current)  # fails, as it should, while anything is left in it
            except OSError:
                break
            shown = shown_path(Path(current), root)
            outcome.record("removed-folder", shown)
            say(f"removed the empty folder {shown}")
            current = os.path.dirname(current)


def _kept(outcome: Outcome, say: Say, shown: str, why: str) -> None:
    outcome.kept += 1
    outcome.record("kept", shown, why)
    say(f"kept {shown}: {why}")


def _delete(item: Item, shown: str, outcome: Outcome, say: Say) -> None:
    why = unlink_pinned(item.found)
    if why is not None:
        _kept(outcome, say, shown, why)
        return
    outcome.deleted += 1
    outcome.freed += item.size
    if item.group is None:
        outcome.emptied.add(os.path.normpath(item.path.parent))
    what = "link" if item.found.link is not None else human_bytes(item.size)
    outcome.record("deleted", shown, item.kind.value, item.size)
    say(f"deleted {shown} ({what}, {item.kind.label})")


def _link(
    item: Item,
    shown: str,
    hubs: HubSet | None,
    guarded: list[str],
    replaced: set[tuple[int, int]],
    outcome: Outcome,
    say: Say,
) -> None:
    copy = item.copy
    if copy is None or hubs is None or copy.hub >= len(hubs):
        _kept(outcome, say, shown, "its hub is not loaded")
        return
    index = hubs.indexes[copy.hub]
    target = safe_target(index, copy.key, guarded, replaced)
    if target is None:
        _kept(outcome, say, shown, f"the hub file {copy.target} cannot be used (see above)")
        return
    if not _same_folder(item.found) or not replace_with_link(
        str(item.path), item.found.stat, target
    ):
        _kept(outcome, say, shown, "it changed since it was listed")
        return
    replaced.add((item.found.stat.dev, item.found.stat.ino))
    outcome.linked += 1
    outcome.freed += item.size
    outcome.record("linked", shown, str(target), item.size)
    say(f"linked {shown} -> {target} ({human_bytes(item.size)})")


def _delete_working(
    folder: Path, stem: str, items: list[Item], root: Path, outcome: Outcome, say: Say
) -> None:
    """Remove one download's working files while holding its lock."""
    working = folder / PARTIAL_FOLDER
    lock_path = working / f"{stem}.lock"
    lock = FileLock(lock_path)
    try:
        taken = lock.try_acquire()
    except OSError as exc:
        taken, why = False, f"cannot take its lock ({exc.strerror or exc})"
    else:
        why = "a download is using it now"
    if not taken:
        for item in items:
            _kept(outcome, say, shown_path(item.path, root), why)
        return
    lock_item = None
    try:
        for item in items:
            if item.path == lock_path:
                lock_item = item  # ours now: removed when released
                continue
            _delete(item, shown_path(item.path, root), outcome, say)
    finally:
        lock.release(remove=True)
    if lock_item is not None:
        outcome.deleted += 1
        outcome.freed += lock_item.size
        shown = shown_path(lock_path, root)
        outcome.record("deleted", shown, Kind.PARTIAL.value, lock_item.size)
        say(f"deleted {shown} ({human_bytes(lock_item.size)}, partial)")
    tidy = WorkingFolder(working)
    try:
        tidy.enter()
    except OSError:
        return
    tidy.leave(tidy=True)  # removes .wandown/ when nothing else is left in it


def _same_folder(found: Found) -> bool:
    try:
        info = os.stat(found.path.parent, follow_symlinks=False)
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == found.folder_id


def unlink_pinned(found: Found) -> str | None:
    """Remove found if it is still what the survey saw; return why not otherwise."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(found.path.parent, flags)
    except OSError as exc:
        return f"its folder cannot be opened ({exc.strerror or exc})"
    name = found.path.name
    try:
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != found.folder_id:
            return "its folder was replaced since it was listed"
        try:
            now = os.lstat(name, dir_fd=fd)
        except FileNotFoundError:
            return "it is gone already"
        if FileStat.of(now) != found.stat:
            return "it changed since it was listed"
        if found.link is not None and os.readlink(name, dir_fd=fd) != found.link:
            return "the link changed since it was listed"
        os.unlink(name, dir_fd=fd)
    except OSError as exc:
        return f"cannot delete it ({exc.strerror or exc})"
    finally:
        os.close(fd)
    return None
