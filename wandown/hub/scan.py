"""Walk a hub folder with os.scandir and stat only; never read or write a hub file.

The hub may mix plain trees of model files, Hugging Face caches and InvokeAI installs at any
depth. Folder links are followed within a bound, since a link may lead anywhere (`/` included):
- a folder already visited (same st_dev and st_ino) is not entered again, so a loop ends;
- a link never leads up: one whose target contains the tree it was found in (the hub, or the
  folder an outer link led to) is not followed, since it would walk that tree's surroundings
  (a link to `/`, to the hub's parent); links to unrelated folders are the user's choice;
- a link into /proc, /sys or /dev is not followed: no models there, and endless files;
- after MAX_ENTRIES entries the scan stops with a notice, whatever it is walking.
Folders given as exclude (the Wan2GP install) are never entered, nor reached through a link: a
hub that links to Wan2GP's ckpts holds no hub files there, only Wan2GP's own copies.
Working folders (wandown's `.wandown`, `.git`, `__pycache__`) are never entered. Every place
that cannot be read is skipped with one notice.
"""

from __future__ import annotations

import contextlib
import gc
import os
import stat as stat_module
from collections.abc import Callable, Iterable
from pathlib import Path

from wandown.digests import BLOB_SHA1, SHA256, is_sha1, is_sha256
from wandown.hub.hfcache import HfCacheRepo, repo_id_from_folder
from wandown.hub.index import HubIndex, ModelHubError
from wandown.hub.invokeai import DATABASE
from wandown.hub.sidecar import FileStat, sidecar_path_for

# Folders of working files, never models: wandown's partial downloads (engine.partial's
# PARTIAL_FOLDER), git objects, Python byte code. Neither the scan nor dedupe enters them.
WORKING_FOLDERS = frozenset({".git", ".wandown", "__pycache__"})
SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")
# A large hub holds some 100,000 files (bench/hub_scan.py); ten times that is no model hub.
MAX_ENTRIES = 1_000_000


def _contains(folder: str, path: str) -> bool:
    """Tell whether path is folder or below it (both real, absolute paths)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def scan_hub(
    hub_dir: Path,
    sidecar_path: Path | None = None,
    notices: Callable[[str], None] | None = None,
    exclude: Iterable[os.PathLike[str] | str] = (),
) -> HubIndex:
    """Scan the hub folder and return its index (stat facts, no file contents read)."""
    root = os.path.abspath(os.fspath(hub_dir))
    try:
        root_stat = os.stat(root)
    except OSError as exc:
        raise ModelHubError(f"cannot use the hub folder {root}: {exc.strerror or exc}") from exc
    if not stat_module.S_ISDIR(root_stat.st_mode):
        raise ModelHubError(f"the hub folder {root} is not a folder")
    index = HubIndex(root, sidecar_path or sidecar_path_for(root), notices)
    # The walk makes a few objects per file and no reference cycles, yet the cyclic collector
    # would re-traverse the growing index again and again: about a third of the scan time for
    # 100,000 files (bench/hub_scan.py). Other threads only lose cycle collection meanwhile.
    collecting = gc.isenabled()
    gc.disable()
    try:
        walker = _Walker(index, root, exclude)
        walker.walk(root, root_stat)
        index.real_roots = list(walker.trees)
        index.folder_ids = frozenset(walker.visited)
    finally:
        if collecting:
            gc.enable()
    return index


class _Walker:
    def __init__(
        self, index: HubIndex, root: str, exclude: Iterable[os.PathLike[str] | str]
    ) -> None:
        self.index = index
        self.visited: set[tuple[int, int]] = set()
        self.excluded = [os.path.realpath(place) for place in exclude]
        self.excluded_ids: set[tuple[int, int]] = set()
        for place in self.excluded:
            with contextlib.suppress(OSError):
                st = os.stat(place)
                self.excluded_ids.add((st.st_dev, st.st_ino))
        self.trees = [os.path.realpath(root)]  # the hub and where links led
        self.entries = 0
        self.stopped = False

    def skip(self, place: str, exc: OSError) -> None:
        self.index.skipped_places += 1
        self.index.notice(f"skipping {place}: {exc.strerror or exc}")

    def list_folder(self, path: str) -> list[os.DirEntry[str]] | None:
        if self.stopped:
            return None
        try:
            with os.scandir(path) as listing:
                entries = list(listing)
        except OSError as exc:
            self.skip(path, exc)
            return None
        self.entries += len(entries)
        if self.entries > MAX_ENTRIES:
            self.stopped = True
            self.index.skipped_places += 1
            self.index.notice(
                f"stopped scanning the hub at {path}: over {MAX_ENTRIES:,} entries, far more than "
                "a model hub holds; does a folder link in it lead somewhere too wide?"
            )
            return None
        return entries

    def is_excluded(self, real_path: str) -> bool:
        return any(_contains(place, real_path) for place in self.excluded)

    def linked_out(self, path: str, target: str) -> bool:
        """Tell (with a notice) whether a file link leads into an excluded folder."""
        if not self.is_excluded(target):
            return False
        self.index.notice(f"skipping {path}: a link into the Wan2GP folder, not a hub file")
        return True

    def may_follow(self, entry: os.DirEntry[str], parent: str) -> bool:
        """Tell whether a folder link leads somewhere bounded (see the module doc)."""
        target, here = os.path.realpath(entry.path), os.path.realpath(parent)
        if any(_contains(system, target) for system in SYSTEM_FOLDERS):
            why = "a system folder"
        elif self.is_excluded(target):
            why = "inside the Wan2GP folder, whose files are not hub files"
        elif any(_contains(tree, here) and _contains(target, tree) for tree in self.trees):
            why = "a folder that contains the hub or the linked folder it is in"
        else:
            self.trees.append(target)
            return True
        self.index.notice(f"not following the link {entry.path}: it leads to {target}, {why}")
        return False

    def enter(self, entry: os.DirEntry[str]) -> bool:
        """Return True the first time a folder (by device and inode) is reached."""
        st = entry.stat()  # follows a link; for a folder itself it is the cached lstat
        identity = (st.st_dev, st.st_ino)
        if identity in self.excluded_ids:
            self.index.notice(f"not entering {entry.path}: it is the Wan2GP folder, not the hub")
            return False
        if identity in self.visited:
            self.index.notice(
                f"not entering {entry.path} again: it leads to a folder already scanned"
            )
            return False
        self.visited.add(identity)
        return True

    def walk(self, root: str, root_stat: os.stat_result) -> None:
        """Walk real folders first and folder links last, so a file is keyed by its real place."""
        self.visited.add((root_stat.st_dev, root_stat.st_ino))
        stack: list[tuple[str, str]] = [(root, "")]
        linked: list[tuple[os.DirEntry[str], str, str]] = []
        while (stack or linked) and not self.stopped:
            if stack:
                folder, prefix = stack.pop()
                self.walk_folder(folder, prefix, stack, linked)
                continue
            entry, key, parent = linked.pop(0)
            try:
                if self.may_follow(entry, parent):
                    self.descend(entry, key, parent, stack)
            except OSError as exc:
                self.skip(entry.path, exc)

    def descend(
        self, entry: os.DirEntry[str], key: str, parent: str, stack: list[tuple[str, str]]
    ) -> None:
        """Enter a folder once: as a Hugging Face cache repo, or onto the stack to walk."""
        if not self.enter(entry):
            return
        hf_repo = repo_id_from_folder(entry.name)
        if hf_repo and self.hf_cache_repo(entry.path, key, *hf_repo):
            return
        if entry.name == "databases" and os.path.isfile(os.path.join(parent, DATABASE)):
            self.index.invokeai_roots.append(parent)
        stack.append((entry.path, key + "/"))

    def walk_folder(
        self,
        folder: str,
        prefix: str,
        stack: list[tuple[str, str]],
        linked: list[tuple[os.DirEntry[str], str, str]],
    ) -> None:
        entries = self.list_folder(folder)
        if entries is None:
            return
        index = self.index
        index.dir_count += 1
        for entry in entries:
            name = entry.name
            try:
                if entry.is_dir():
                    if name in WORKING_FOLDERS:
                        continue
                    if entry.is_symlink():
                        linked.append((entry, prefix + name, folder))
                    else:
                        self.descend(entry, prefix + name, folder, stack)
                elif entry.is_file():
                    target = os.path.realpath(entry.path) if entry.is_symlink() else None
                    if target is None or not self.linked_out(entry.path, target):
                        index.add_file(prefix + name, FileStat.of(entry.stat()), link_target=target)
                elif entry.is_symlink():
                    index.broken_links += 1
                    index.notice(f"skipping {entry.path}: a broken link")
            except OSError as exc:
                self.skip(entry.path, exc)

    def hf_cache_repo(self, folder: str, key: str, repo_type: str, repo_id: str) -> bool:
        """Index a Hugging Face cache repo folder; return False if it is not one after all."""
        entries = self.list_folder(folder)
        if entries is None:
            return True
        parts = {entry.name: entry for entry in entries}
        blobs, snapshots = parts.get("blobs"), parts.get("snapshots")
        if blobs is None or snapshots is None or not (blobs.is_dir() and snapshots.is_dir()):
            return False
        self.index.dir_count += 1
        hf_repo = HfCacheRepo(repo_type, repo_id, folder)
        self.hf_blobs(hf_repo, blobs.path, key + "/blobs/")
        for commit in self.list_folder(snapshots.path) or []:
            try:
                if commit.is_dir(follow_symlinks=False):
                    hf_repo.snapshot_mtimes[commit.name] = commit.stat(
                        follow_symlinks=False
                    ).st_mtime_ns
                    hf_repo.snapshots[commit.name] = self.hf_snapshot(
                        hf_repo, commit.path, f"{key}/snapshots/{commit.name}/"
                    )
            except OSError as exc:
                self.skip(commit.path, exc)
        self.index.hf_repos.append(hf_repo)
        return True

    def hf_blobs(self, hf_repo: HfCacheRepo, folder: str, prefix: str) -> None:
        for blob in self.list_folder(folder) or []:
            name = blob.name
            if is_sha256(name):
                known = {SHA256: name}
            elif is_sha1(name):
                known = {BLOB_SHA1: name}
            else:
                continue  # "<etag>.incomplete": a download still running or abandoned
            try:
                if not blob.is_file(follow_symlinks=False):
                    continue
                self.index.add_file(
                    prefix + name, FileStat.of(blob.stat(follow_symlinks=False)), known=known
                )
            except OSError as exc:
                self.skip(blob.path, exc)
                continue
            hf_repo.blobs[name] = prefix + name

    def hf_snapshot(self, hf_repo: HfCacheRepo, folder: str, key_prefix: str) -> dict[str, str]:
        """Map each path of one snapshot to the blob its link names."""
        links: dict[str, str] = {}
        stack = [(folder, "")]
        while stack:
            current, prefix = stack.pop()
            for entry in self.list_folder(current) or []:
                inside = prefix + entry.name
                try:
                    if entry.is_symlink():
                        blob = os.path.basename(os.readlink(entry.path))
                        if blob in hf_repo.blobs:
                            links[inside] = blob
                        elif entry.is_file():  # a link to somewhere else: an ordinary hub file
                            target = os.path.realpath(entry.path)
                            if self.linked_out(entry.path, target):
                                continue
                            self.index.add_file(
                                key_prefix + inside, FileStat.of(entry.stat()), link_target=target
                            )
                        else:
                            self.index.broken_links += 1
                            self.index.notice(f"skipping {entry.path}: a broken link")
                    elif entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, inside + "/"))
                    elif entry.is_file(follow_symlinks=False):
                        # Caches made without symlink support hold copies: plain files to hash.
                        self.index.add_file(
                            key_prefix + inside, FileStat.of(entry.stat(follow_symlinks=False))
                        )
                except OSError as exc:
                    self.skip(entry.path, exc)
        return links
