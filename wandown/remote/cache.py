"""The metadata cache: one JSON file of file sizes/hashes per commit and branch -> commit answers.

Entries are keyed by endpoint, repo, commit and path, so a mirror and the real Hub never mix.
Writers merge under an flock'ed lock file and re-read before writing, so two wandown processes
never lose each other's entries. The token is never part of any entry.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wandown import jsonfile
from wandown.digests import is_sha1, is_sha256
from wandown.errors import RemoteError
from wandown.fsutil import atomic_write_json, cache_dir

try:
    import fcntl
except ImportError:  # Windows: no flock; last writer wins there.
    fcntl = None  # type: ignore[assignment]

FORMAT = "wandown-metadata"
VERSION = 1
FILE_NAME = "metadata.json"
MAX_FILE_SIZE = 1 << 50  # 1 PiB: a size past this is a damaged or hostile file, not a model

FileKey = tuple[str, str, str, str]  # endpoint, repo, commit, path
BranchKey = tuple[str, str, str]  # endpoint, repo, revision


class MetadataFileError(RemoteError):
    """A metadata file (cache or import) is not something wandown wrote."""


@dataclass(frozen=True)
class FileMeta:
    """What the Hub said about one file at one commit."""

    size: int
    sha256: str | None
    blob_sha1: str | None


@dataclass(frozen=True)
class BranchMeta:
    """The commit a branch or tag pointed at, and when wandown last asked (Unix time)."""

    commit: str
    checked: float


def default_cache_path() -> Path:
    """Return the metadata cache file in wandown's cache folder."""
    return cache_dir() / FILE_NAME


def is_commit(revision: str) -> bool:
    """Tell whether revision is a full commit id, which never moves."""
    return is_sha1(revision)


class MetadataCache:
    """The in-memory view of the cache file plus the entries added since it was read."""

    def __init__(self, path: Path | None = None, *, now: Callable[[], float] = time.time) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.problems: list[str] = []
        self._now = now
        self._lock = threading.Lock()
        self._loaded = False
        self._files: dict[FileKey, FileMeta] = {}
        self._branches: dict[BranchKey, BranchMeta] = {}
        self._new_files: dict[FileKey, FileMeta] = {}
        self._new_branches: dict[BranchKey, BranchMeta] = {}
        self._locking = fcntl is not None

    @property
    def lock_path(self) -> Path:
        """Return the lock file that serialises writers of the cache file."""
        return self.path.with_name(self.path.name + ".lock")

    def file(self, key: FileKey) -> FileMeta | None:
        """Return the cached metadata of one file at one commit."""
        with self._lock:
            self._load_once()
            return self._files.get(key)

    def branch(self, key: BranchKey) -> BranchMeta | None:
        """Return the last known commit of a branch or tag."""
        with self._lock:
            self._load_once()
            return self._branches.get(key)

    def add_file(self, key: FileKey, meta: FileMeta) -> None:
        """Remember a file's metadata (saved by the next save())."""
        with self._lock:
            self._load_once()
            if self._files.get(key) != meta:
                self._files[key] = meta
                self._new_files[key] = meta

    def add_branch(self, key: BranchKey, commit: str) -> None:
        """Remember that a branch pointed at commit now."""
        meta = BranchMeta(commit=commit, checked=self._now())
        with self._lock:
            self._load_once()
            self._branches[key] = meta
            self._new_branches[key] = meta

    def save(self) -> None:
        """Merge the new entries into the file on disk, under the lock, atomically."""
        with self._lock:
            if not self._new_files and not self._new_branches:
                return
            with self._file_lock():
                files, branches = self._read_disk()
                files.update(self._new_files)
                _merge_branches(branches, self._new_branches)
                self._write(files, branches)
            self._files, self._branches = files, branches
            self._new_files, self._new_branches = {}, {}
            self._loaded = True

    def clear(self) -> None:
        """Forget everything: the file on disk and what is in memory.

        Raises MetadataFileError when the file cannot be removed (a read-only cache folder).
        """
        with self._lock, self._file_lock():
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise MetadataFileError(
                    f"Cannot clear the metadata cache {self.path}: {_reason(exc)}."
                ) from None
            self._files, self._branches = {}, {}
            self._new_files, self._new_branches = {}, {}
            self._loaded = True

    def export(self, destination: Path) -> int:
        """Write every known entry (disk and memory) to destination; return how many.

        The file is readable by others as the umask allows, as a file saved by any program
        would be: it is meant to be copied to another machine. Raises MetadataFileError when
        it cannot be written.
        """
        destination = Path(destination)
        with self._lock:
            with self._file_lock():
                files, branches = self._read_disk()
            files.update(self._files)
            _merge_branches(branches, self._branches)
            try:
                atomic_write_json(destination, _to_json(files, branches))
            except OSError as exc:
                raise MetadataFileError(
                    f"Cannot write metadata file {destination}: {_reason(exc)}."
                ) from None
            # atomic_write_json creates files 0600 (mkstemp); an export is not a secret.
            with contextlib.suppress(OSError):
                os.chmod(destination, 0o666 & ~_umask())
            return len(files) + len(branches)

    def import_file(self, source: Path) -> int:
        """Validate an exported file and merge it into the cache; return how many entries it had."""
        source = Path(source)
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise MetadataFileError(f"Cannot read metadata file {source}: {exc}") from None
        try:
            files, branches = _from_json(jsonfile.loads(text, source))
        except (ValueError, MetadataFileError) as exc:
            raise MetadataFileError(f"{source} is not a wandown metadata file: {exc}") from None
        with self._lock:
            self._load_once()
            for key, meta in files.items():
                self._files[key] = self._new_files[key] = meta
            for branch_key, branch in branches.items():
                known = self._branches.get(branch_key)
                if known is None or branch.checked > known.checked:
                    self._branches[branch_key] = self._new_branches[branch_key] = branch
        try:
            self.save()
        except OSError as exc:
            raise MetadataFileError(
                f"Cannot write the metadata cache {self.path}: {_reason(exc)}."
            ) from None
        return len(files) + len(branches)

    def _load_once(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        with self._file_lock():
            self._files, self._branches = self._read_disk()

    def _read_disk(self) -> tuple[dict[FileKey, FileMeta], dict[BranchKey, BranchMeta]]:
        """Read the cache file; a corrupt one is moved aside and reported once in problems."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}, {}
        except (OSError, UnicodeDecodeError) as exc:
            return self._set_aside(str(exc))
        try:
            return _from_json(jsonfile.loads(text, self.path))
        except (ValueError, MetadataFileError) as exc:
            return self._set_aside(str(exc))

    def _set_aside(
        self, reason: str
    ) -> tuple[dict[FileKey, FileMeta], dict[BranchKey, BranchMeta]]:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        try:
            os.replace(self.path, aside)
            where = f"moved to {aside}"
        except OSError:
            where = "ignored"
        self.problems.append(f"Metadata cache {self.path} was unreadable ({reason}); {where}.")
        return {}, {}

    def _write(self, files: dict[FileKey, FileMeta], branches: dict[BranchKey, BranchMeta]) -> None:
        atomic_write_json(self.path, _to_json(files, branches))

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        if not self._locking:
            yield
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.lock_path, "a+b")  # noqa: SIM115 - closed below
        except OSError:
            # A read-only cache folder: reading needs no lock, and writing fails on its own.
            yield
            return
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            except OSError as exc:
                # NFS without a lock daemon answers ENOLCK, some FUSE file systems EOPNOTSUPP
                # or ENOSYS: carry on unlocked rather than fail, and say so once.
                self._locking = False
                self.problems.append(
                    f"Cannot lock {self.lock_path} ({_reason(exc)}); the metadata cache is "
                    "written without a lock, so two wandown runs at once may lose entries."
                )
                yield
                return
            try:
                yield
            finally:
                with contextlib.suppress(OSError):
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _reason(exc: OSError) -> str:
    """Return the system's words for an OSError ("Permission denied"), without the path."""
    return exc.strerror or str(exc)


def _umask() -> int:
    """Return the process umask without changing it (Linux), else by setting and restoring it."""
    # os.umask can only be read by setting it, which races with other threads creating files;
    # /proc/self/status has it since Linux 4.7. The fallback sets the strictest mask meanwhile,
    # so a racing thread could only ever create a file too private, never too open.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _merge_branches(into: dict[BranchKey, BranchMeta], new: dict[BranchKey, BranchMeta]) -> None:
    for key, meta in new.items():
        known = into.get(key)
        if known is None or meta.checked >= known.checked:
            into[key] = meta


def _to_json(
    files: dict[FileKey, FileMeta], branches: dict[BranchKey, BranchMeta]
) -> dict[str, Any]:
    """Lay entries out as hubs -> endpoint -> commits/branches -> repo, readable by people."""
    hubs: dict[str, Any] = {}
    for (endpoint, repo, commit, path), meta in files.items():
        hub = hubs.setdefault(endpoint, {"commits": {}, "branches": {}})
        hub["commits"].setdefault(repo, {}).setdefault(commit, {})[path] = {
            "size": meta.size,
            "sha256": meta.sha256,
            "blob_sha1": meta.blob_sha1,
        }
    for (endpoint, repo, revision), branch in branches.items():
        hub = hubs.setdefault(endpoint, {"commits": {}, "branches": {}})
        hub["branches"].setdefault(repo, {})[revision] = {
            "commit": branch.commit,
            "checked": branch.checked,
        }
    return {"format": FORMAT, "version": VERSION, "hubs": hubs}


def _from_json(data: Any) -> tuple[dict[FileKey, FileMeta], dict[BranchKey, BranchMeta]]:
    """Validate and flatten what _to_json wrote; raise MetadataFileError on anything else."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise MetadataFileError(f'no "format": "{FORMAT}" marker')
    if data.get("version") != VERSION:
        raise MetadataFileError(f"unsupported version {data.get('version')!r}")
    hubs = _mapping(data.get("hubs"), "hubs")
    files: dict[FileKey, FileMeta] = {}
    branches: dict[BranchKey, BranchMeta] = {}
    for endpoint, hub in hubs.items():
        hub = _mapping(hub, endpoint)
        for repo, commits in _mapping(hub.get("commits", {}), "commits").items():
            for commit, paths in _mapping(commits, repo).items():
                _require(is_commit(commit), f"{repo}: {commit!r} is not a commit id")
                for path, entry in _mapping(paths, commit).items():
                    files[(endpoint, repo, commit, path)] = parse_file_meta(entry, f"{repo}/{path}")
        for repo, revisions in _mapping(hub.get("branches", {}), "branches").items():
            for revision, entry in _mapping(revisions, repo).items():
                entry = _mapping(entry, f"{repo}@{revision}")
                target, checked = entry.get("commit"), entry.get("checked")
                if not (isinstance(target, str) and is_commit(target)):
                    raise MetadataFileError(f"{repo}@{revision}: bad commit")
                if not isinstance(checked, (int, float)) or isinstance(checked, bool):
                    raise MetadataFileError(f"{repo}@{revision}: bad time")
                branches[(endpoint, repo, revision)] = BranchMeta(target, float(checked))
    return files, branches


def parse_file_meta(entry: Any, where: str) -> FileMeta:
    """Validate one {size, sha256, blob_sha1} record; raise MetadataFileError when unusable."""
    entry = _mapping(entry, where)
    size, sha256, blob_sha1 = entry.get("size"), entry.get("sha256"), entry.get("blob_sha1")
    _require(
        isinstance(size, int) and not isinstance(size, bool) and 0 <= size <= MAX_FILE_SIZE,
        f"{where}: bad size",
    )
    _require(
        sha256 is None or (isinstance(sha256, str) and is_sha256(sha256)),
        f"{where}: bad sha256",
    )
    _require(
        blob_sha1 is None or (isinstance(blob_sha1, str) and is_sha1(blob_sha1)),
        f"{where}: bad blob_sha1",
    )
    _require(sha256 is not None or blob_sha1 is not None, f"{where}: no hash")
    return FileMeta(size=size, sha256=sha256, blob_sha1=blob_sha1)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MetadataFileError(f"{where}: expected an object")
    return value


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise MetadataFileError(problem)
