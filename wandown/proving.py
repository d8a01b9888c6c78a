"""Which local file holds each catalog file's bytes, proven by the Hub's digest (for --serve).

A file is proven when its bytes hash to what the Hub's metadata says (sha256 for LFS files, the
git blob sha1 for small ones): the hub's own proofs (its sidecar, or one reading) first, then the
file at its destination under Wan2GP, read once and remembered by its identity in wandown's cache.
Each proven file is kept by its real path and its identity (size, mtime, ctime, inode), so a link
retargeted or a file rewritten later is no longer that file. Nothing outside the served roots
(the Wan2GP install, its checkpoint roots, the hub) is ever taken.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wandown.digests import BLOB_SHA1, SHA256, Progress
from wandown.fsutil import cache_dir, is_inside_any
from wandown.hub import HubSet, Wanted
from wandown.hub.sidecar import FileStat
from wandown.loaded import Loaded, wanted_of
from wandown.localhub.hashes import HashCache
from wandown.remote import RemoteFile
from wandown.units import human_bytes

Notice = Callable[[str], None]
LOUD_READ = 100_000_000  # files at least this big are named before they are read

HASHES_FILE = "serve-hashes.json"


def hashes_path() -> Path:
    """Return where --serve remembers the digests of files it read under Wan2GP."""
    return cache_dir() / HASHES_FILE


@dataclass(frozen=True)
class ProvenFile:
    """A Hub file and the local file whose bytes were proven to be it."""

    remote: RemoteFile
    local: Path  # real path, no link in it
    identity: FileStat  # what the file looked like when it was proven

    @property
    def digest(self) -> str:
        """Return the digest that proved it: sha256 for LFS files, else the git blob sha1."""
        return self.remote.sha256 or self.remote.blob_sha1 or ""


@dataclass(frozen=True)
class Proof:
    """What a machine can serve: proven files, and how many Hub files it cannot."""

    files: tuple[ProvenFile, ...]
    known: int  # distinct Hub files the metadata describes

    @property
    def size(self) -> int:
        return sum(file.remote.size for file in self.files)


def served_roots(loaded: Loaded) -> list[str]:
    """Return the real folders files may be served from: the install, its roots, the hub."""
    catalog = loaded.catalog
    folders = [
        catalog.root,
        *(catalog.root / place for place in catalog.settings.checkpoints_paths),
    ]
    folders += loaded.hub_folders()
    return list(dict.fromkeys(os.path.realpath(folder) for folder in folders))


def digest_kind(remote: RemoteFile) -> str:
    """Return which digest proves a Hub file."""
    return SHA256 if remote.sha256 is not None else BLOB_SHA1


def prove(loaded: Loaded, notice: Notice, hashes: HashCache | None = None) -> Proof:
    """Find and prove a local copy of every Hub file the catalog's metadata describes."""
    remotes = _hub_files(loaded)
    roots = served_roots(loaded)
    hashes = hashes or HashCache(loaded.catalog.root, hashes_path())
    found: dict[RemoteFile, ProvenFile] = {}
    hub = loaded.hub
    if hub is not None:
        found.update(_in_hub(hub, remotes, roots, read=False))
    pending = {remote: dests for remote, dests in remotes.items() if remote not in found}
    read_before = hashes.hashed
    found.update(_at_destinations(loaded, pending, roots, hashes, notice))
    hashes.flush()
    if hashes.hashed > read_before:
        count = hashes.hashed - read_before
        files = "1 file" if count == 1 else f"{count} files"
        notice(f"read {files} to prove them; their hashes are kept for the next start")
    if hub is not None:
        rest = {remote: dests for remote, dests in pending.items() if remote not in found}
        found.update(_in_hub(hub, rest, roots, read=True, notice=notice))
    ordered = sorted(found.values(), key=lambda f: (f.remote.repo, f.remote.path))
    return Proof(tuple(ordered), len(remotes))


def _hub_files(loaded: Loaded) -> dict[RemoteFile, list[str]]:
    """Return each distinct Hub file with the destinations that hold it."""
    remotes: dict[RemoteFile, list[str]] = {}
    for dest, remote in sorted(loaded.remote.items()):
        if remote.sha256 is not None or remote.blob_sha1 is not None:
            remotes.setdefault(remote, []).append(dest)
    return remotes


def _in_hub(
    hub: HubSet,
    remotes: dict[RemoteFile, list[str]],
    roots: list[str],
    *,
    read: bool,
    notice: Notice | None = None,
) -> dict[RemoteFile, ProvenFile]:
    """Prove Hub files by hub files: from remembered digests only, or reading candidates."""
    wanted: dict[Wanted, list[RemoteFile]] = {}
    for remote in remotes:
        item = wanted_of(remote)
        if item is not None and hub.has_size(item.size):
            wanted.setdefault(item, []).append(remote)
    if not wanted:
        return {}
    matched = hub.match(wanted, progress=_announce(notice)) if read else hub.proven(wanted)
    found: dict[RemoteFile, ProvenFile] = {}
    for item, path in matched.items():
        identity = _hub_identity(hub, item.size, path)
        local = Path(os.path.realpath(path))
        if identity is None or not is_inside_any(local, roots):
            continue
        for remote in wanted[item]:
            found[remote] = ProvenFile(remote, local, identity)
    return found


def _announce(notice: Notice | None) -> Progress | None:
    """Return a hashing progress that names each big hub file once, as its reading starts."""
    if notice is None:
        return None
    named: set[Path] = set()

    def progress(path: Path, done: int, total: int) -> None:
        if total >= LOUD_READ and path not in named:
            named.add(path)
            notice(f"reading hub file {path} ({human_bytes(total)}) to prove it")

    return progress


def _hub_identity(hubs: HubSet, size: int, path: Path) -> FileStat | None:
    """Return the identity a hub proved path by, if the file still has it."""
    for hub in hubs:
        for key in hub.candidates(size):
            if hub.link_target(key) != path:
                continue
            try:
                now = FileStat.of(os.stat(path))
            except OSError:
                return None
            return now if now == hub.files[key] else None
    return None


def _at_destinations(
    loaded: Loaded,
    remotes: dict[RemoteFile, list[str]],
    roots: list[str],
    hashes: HashCache,
    notice: Notice,
) -> dict[RemoteFile, ProvenFile]:
    """Prove Hub files by the files at their destinations, reading each unknown one once."""
    found: dict[RemoteFile, ProvenFile] = {}
    for remote, dests in remotes.items():
        for dest in dests:
            proven = _prove_place(loaded, dest, remote, roots, hashes, notice)
            if proven is not None:
                found[remote] = proven
                break
    return found


def _prove_place(
    loaded: Loaded,
    dest: str,
    remote: RemoteFile,
    roots: list[str],
    hashes: HashCache,
    notice: Notice,
) -> ProvenFile | None:
    place = loaded.presence.get(dest)
    if place is None or place.found_at is None:
        return None
    local = Path(os.path.realpath(place.found_at))
    if not is_inside_any(local, roots):
        notice(f"{dest} leads to {local}, outside the Wan2GP folder and the hub; not served")
        return None
    try:
        info = os.stat(local)
    except OSError:
        return None
    if info.st_size != remote.size:
        notice(f"{dest} is {info.st_size} bytes, the Hub's file {remote.size}; not served")
        return None
    kind = digest_kind(remote)
    stamp = {"ctime_ns": info.st_ctime_ns, "inode": info.st_ino}
    if (
        info.st_size >= LOUD_READ
        and hashes.lookup(local, info.st_size, info.st_mtime_ns, kind, **stamp) is None
    ):
        notice(f"reading {dest} ({human_bytes(info.st_size)}) to prove it is the Hub's file")
    try:
        digest = hashes.digest(local, info.st_size, info.st_mtime_ns, kind, **stamp)
    except OSError as exc:
        notice(f"cannot read {dest}: {exc.strerror or exc}; not served")
        return None
    if digest != (remote.sha256 or remote.blob_sha1):
        notice(f"{dest} is not the Hub's file ({kind} differs); not served")
        return None
    return ProvenFile(remote, local, FileStat.of(info))


def describe(proof: Proof) -> str:
    """Say what a proof found, for the serving machine's log."""
    missing = proof.known - len(proof.files)
    found = f"{len(proof.files)} of {proof.known} Hub files are here and proven"
    line = f"{found} ({human_bytes(proof.size)})"
    if missing == 1:
        return f"{line}; 1 is not, and answers 404"
    return f"{line}; {missing} are not, and answer 404" if missing else line
