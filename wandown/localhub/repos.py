"""Repositories found on disk: plain folders and Hugging Face cache folders.

A plain folder ``ROOT/<owner>/<repo>/`` has one branch, ``main``, whose commit id is synthesized
from the file listing (paths, sizes, mtimes), so it changes whenever a file does. A cache folder
``models--<owner>--<repo>/`` (as huggingface_hub writes it) has real branches in ``refs/`` and one
snapshot per commit in ``snapshots/<commit>/``; its blob names already are the files' digests.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from wandown.digests import is_sha1, is_sha256
from wandown.fsutil import is_inside

# The Hub stores a file in LFS when it is large or its extension is in the default .gitattributes
# that huggingface.co writes into every new model repo.
LFS_MIN_SIZE = 10 * 1024 * 1024
LFS_SUFFIXES = frozenset(
    {
        "7z",
        "arrow",
        "bin",
        "bz2",
        "ckpt",
        "ftz",
        "gguf",
        "gz",
        "h5",
        "joblib",
        "mlmodel",
        "model",
        "msgpack",
        "npy",
        "npz",
        "onnx",
        "ot",
        "parquet",
        "pb",
        "pickle",
        "pkl",
        "pt",
        "pth",
        "rar",
        "safetensors",
        "tar",
        "tflite",
        "tgz",
        "wasm",
        "xz",
        "zip",
        "zst",
    }
)
CACHE_PREFIX = "models--"
SKIPPED_DIRS = frozenset({".git"})
KEEP_COMMITS = 64  # per folder repo: how many of its past commits stay servable
CACHE_SEARCH_DEPTH = 3


def is_lfs(path: str, size: int) -> bool:
    """Tell whether the Hub would keep this file in LFS."""
    name = path.rsplit("/", 1)[-1].lower()
    if size >= LFS_MIN_SIZE or ".lfs." in name or "tfevents" in name:
        return True
    return "." in name and name.rsplit(".", 1)[1] in LFS_SUFFIXES


@dataclass(frozen=True)
class RepoFile:
    """One file of a snapshot."""

    path: str  # inside the repo, "/"-separated
    local: Path
    size: int
    mtime_ns: int
    lfs: bool
    known_digest: str | None = None  # sha256 (LFS) or blob sha1, when a cache blob name says so
    ctime_ns: int = 0
    inode: int = 0

    @property
    def identity(self) -> tuple[int, int, int, int]:
        """Return what tells this version of the file from any other: size, mtime, ctime, inode."""
        return self.size, self.mtime_ns, self.ctime_ns, self.inode

    def changed_from(self, info: os.stat_result) -> bool:
        """Tell whether info (a stat of the file now) shows another file than this one."""
        now = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
        return now != self.identity


def repo_file(
    rel: str, local: Path, info: os.stat_result, lfs: bool, known: str | None = None
) -> RepoFile:
    """Describe the file rel at local from its stat."""
    return RepoFile(
        rel, local, info.st_size, info.st_mtime_ns, lfs, known, info.st_ctime_ns, info.st_ino
    )


@dataclass(frozen=True)
class Snapshot:
    """The files of one repo at one commit, sorted by path."""

    repo_id: str
    commit: str
    files: dict[str, RepoFile]
    last_modified_ns: int
    # Files this commit had that changed on disk since, with why (a folder's old commits).
    changed: dict[str, str] = field(default_factory=dict)
    folders: frozenset[str] = field(init=False)  # derived from files

    def __post_init__(self) -> None:
        parents = set()
        for path in self.files:
            parts = path.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                parents.add("/".join(parts[:depth]))
        object.__setattr__(self, "folders", frozenset(parents))


def _walk_files(top: Path, bound: Path) -> list[tuple[str, Path, os.stat_result]]:
    """List regular files under top (following file symlinks) as (relative path, path, stat).

    Only files whose real path is inside bound (the served root) are listed, so a link in a
    repo to /etc/passwd or a user's home is never served; a HF cache's snapshot links into its
    own blobs/ stay inside. os.walk does not follow folder links, so only top and file links
    can lead out.
    """
    found: list[tuple[str, Path, os.stat_result]] = []
    if not is_inside(top, bound):
        return found
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS]  # the result is sorted
        for name in filenames:
            local = Path(dirpath, name)
            try:
                info = local.stat()
                leads_out = local.is_symlink() and not is_inside(local, bound)
            except OSError:
                continue  # a broken link or a file removed while we looked
            if not stat.S_ISREG(info.st_mode) or leads_out:
                continue
            found.append((local.relative_to(top).as_posix(), local, info))
    found.sort(key=lambda item: item[0])
    return found


class History:
    """The last commits each folder repo had, so that a commit a client was told stays usable.

    A folder's commit id changes with any file in it; without this, one changed file made every
    file of the repo unknown (404) to a client that listed the repo before the change.
    """

    def __init__(self, keep: int = KEEP_COMMITS) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._commits: dict[str, OrderedDict[str, Snapshot]] = {}

    def remember(self, snapshot: Snapshot) -> None:
        with self._lock:
            commits = self._commits.setdefault(snapshot.repo_id, OrderedDict())
            commits[snapshot.commit] = snapshot
            commits.move_to_end(snapshot.commit)
            while len(commits) > self._keep:
                commits.popitem(last=False)

    def get(self, repo_id: str, commit: str) -> Snapshot | None:
        with self._lock:
            commits = self._commits.get(repo_id)
            return commits.get(commit) if commits is not None else None


class FolderRepo:
    """A plain folder served as a repo with a single branch, ``main``."""

    branch = "main"

    def __init__(
        self, repo_id: str, folder: Path, history: History | None = None, root: Path | None = None
    ) -> None:
        self.repo_id = repo_id
        self.folder = folder
        self.history = history or History()
        self.root = root or folder  # what is served: no file outside it

    def current(self) -> Snapshot:
        """Scan the folder and return its snapshot, with a commit id derived from the listing."""
        listing = hashlib.sha1(b"localhub folder\n", usedforsecurity=False)
        files: dict[str, RepoFile] = {}
        newest = 0
        for rel, local, info in _walk_files(self.folder, self.root):
            file = repo_file(rel, local, info, is_lfs(rel, info.st_size))
            listing.update(f"{rel}\0{file.identity}\n".encode())
            files[rel] = file
            newest = max(newest, info.st_mtime_ns)
        snapshot = Snapshot(self.repo_id, listing.hexdigest(), files, newest)
        self.history.remember(snapshot)
        return snapshot

    def branches(self) -> dict[str, str]:
        """Return branch name -> commit id."""
        return {self.branch: self.current().commit}

    def resolve(self, revision: str) -> Snapshot | None:
        """Return the snapshot at revision (branch or commit), or None if there is none."""
        snapshot = self.current()
        if revision in (self.branch, snapshot.commit):
            return snapshot
        old = self.history.get(self.repo_id, revision)
        return _carried(old, snapshot) if old is not None else None


def _carried(old: Snapshot, now: Snapshot) -> Snapshot:
    """Return the old commit with the files still as they were; the others say what happened."""
    files, changed = {}, {}
    since = f"since commit {old.commit[:12]}"
    for path, was in old.files.items():
        current = now.files.get(path)
        if current is None:
            changed[path] = f"was removed from the folder {since}"
        elif current.identity != was.identity:
            sizes = f" ({was.size} bytes then, {current.size} now)"
            changed[path] = f"changed on disk {since}" + ("" if current.size == was.size else sizes)
        else:
            files[path] = current
    return Snapshot(old.repo_id, old.commit, files, old.last_modified_ns, changed)


class CacheRepo:
    """A Hugging Face cache folder (``models--owner--name``) served with its own refs."""

    def __init__(self, repo_id: str, folder: Path, root: Path | None = None) -> None:
        self.repo_id = repo_id
        self.folder = folder
        self.root = root or folder  # what is served: no file outside it

    def branches(self) -> dict[str, str]:
        """Return ref name (``main``, ``refs/pr/1``) -> commit, for refs with a snapshot."""
        refs_dir = self.folder / "refs"
        found = {}
        for rel, local, _info in _walk_files(refs_dir, self.root) if refs_dir.is_dir() else []:
            try:
                commit = local.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                continue
            # refs/main is the branch "main"; refs/pr/1 is addressed by its full name.
            name = f"refs/{rel}" if rel.startswith(("pr/", "convert/")) else rel
            if is_sha1(commit) and (self.folder / "snapshots" / commit).is_dir():
                found[name] = commit
        return found

    def resolve(self, revision: str) -> Snapshot | None:
        """Return the snapshot at revision (ref or commit), or None if the cache lacks it."""
        commit = self.branches().get(revision.removeprefix("refs/heads/"))
        if commit is None and is_sha1(revision):
            commit = revision
        top = self.folder / "snapshots" / (commit or "")
        if commit is None or not top.is_dir():
            return None
        files: dict[str, RepoFile] = {}
        newest = 0
        for rel, local, info in _walk_files(top, self.root):
            blob_name = os.path.basename(os.path.realpath(local))
            if is_sha256(blob_name):
                lfs, known = True, blob_name
            elif is_sha1(blob_name):
                lfs, known = False, blob_name
            else:
                lfs, known = is_lfs(rel, info.st_size), None
            files[rel] = repo_file(rel, local, info, lfs, known)
            newest = max(newest, info.st_mtime_ns)
        return Snapshot(self.repo_id, commit, files, newest)


class Repo(Protocol):
    """What the routes need of a repo: its branches, and the snapshot a revision names."""

    repo_id: str

    def branches(self) -> dict[str, str]: ...

    def resolve(self, revision: str) -> Snapshot | None: ...


class Store(Protocol):
    """Where the routes find repos: RepoStore (folders on disk), or one built by a caller."""

    def find(self, repo_id: str) -> Repo | None: ...

    def repo_ids(self) -> list[str]: ...


def cache_folder_repo_id(name: str) -> str | None:
    """Turn ``models--owner--name`` into ``owner/name`` (None for other folder names)."""
    if not name.startswith(CACHE_PREFIX):
        return None
    parts = name[len(CACHE_PREFIX) :].split("--")
    return "/".join(parts) if 1 <= len(parts) <= 2 and all(parts) else None


class RepoStore:
    """Find repos under a root folder; plain folders win over cache folders of the same name."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._cache_folders: dict[str, Path] = {}
        self._lock = threading.Lock()
        self.history = History()
        self._scan_cache_folders()

    def _scan_cache_folders(self) -> None:
        found: dict[str, Path] = {}
        level = [self.root]
        for _depth in range(CACHE_SEARCH_DEPTH):
            next_level = []
            for folder in level:
                try:
                    children = sorted(p for p in folder.iterdir() if p.is_dir())
                except OSError:
                    continue
                for child in children:
                    repo_id = cache_folder_repo_id(child.name)
                    if repo_id is not None and (child / "snapshots").is_dir():
                        found.setdefault(repo_id, child)
                    elif not child.name.startswith((".", "datasets--", "spaces--")):
                        next_level.append(child)
            level = next_level
        with self._lock:
            self._cache_folders = found

    def _plain(self, repo_id: str) -> FolderRepo | None:
        parts = repo_id.split("/")
        if len(parts) != 2 or any(
            p.startswith((".", CACHE_PREFIX, "datasets--")) or not p for p in parts
        ):
            return None
        folder = self.root / parts[0] / parts[1]
        if not folder.is_dir() or self._holds_caches(folder):
            return None
        return FolderRepo(repo_id, folder, self.history, self.root)

    @staticmethod
    def _holds_caches(folder: Path) -> bool:
        """Tell a folder of cache folders (like ``~/.cache/huggingface/hub``) from a repo."""
        try:
            return any(cache_folder_repo_id(p.name) for p in folder.iterdir() if p.is_dir())
        except OSError:
            return False

    def find(self, repo_id: str) -> Repo | None:
        """Return the repo called repo_id, or None."""
        plain = self._plain(repo_id)
        if plain is not None:
            return plain
        with self._lock:
            folder = self._cache_folders.get(repo_id)
        if folder is None or not folder.is_dir():
            self._scan_cache_folders()  # a cache folder may have appeared since the last look
            with self._lock:
                folder = self._cache_folders.get(repo_id)
        return CacheRepo(repo_id, folder, self.root) if folder is not None else None

    def repo_ids(self) -> list[str]:
        """List every repo id served, sorted."""
        ids: set[str] = set()
        for owner in self.root.iterdir() if self.root.is_dir() else []:
            if (
                owner.is_dir()
                and not owner.name.startswith(".")
                and cache_folder_repo_id(owner.name) is None
            ):
                ids.update(
                    f"{owner.name}/{r.name}"
                    for r in owner.iterdir()
                    if r.is_dir() and self._plain(f"{owner.name}/{r.name}")
                )
        self._scan_cache_folders()
        with self._lock:
            ids.update(self._cache_folders)
        return sorted(ids)
