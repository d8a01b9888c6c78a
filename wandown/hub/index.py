"""What the hub holds, and which hub file proves to be which wanted file.

The scan (scan.py) fills a HubIndex with stat facts only. Matching hashes a hub file only when
its size equals a wanted file's size and no remembered digest already answers, and reads each
such file once for every digest wanted from it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from wandown import digests, fsutil
from wandown.digests import BLAKE3, BLOB_SHA1, SHA256, Progress
from wandown.errors import WandownError
from wandown.hub.hfcache import HfCacheRepo
from wandown.hub.invokeai import InvokeAIRecord, read_records
from wandown.hub.sidecar import FileStat, HashSidecar

_HEX = {SHA256: digests.SHA256_HEX, BLOB_SHA1: digests.SHA1_HEX, BLAKE3: digests.SHA256_HEX}

# Files this small are hashed for every identity at once: the Hub stores files under 10 MB
# outside LFS (identified by git blob sha1), and reading them is cheap, so a later run that asks
# for another identity never has to read them again.
SMALL_FILE_LIMIT = 10 * 1024 * 1024


class ModelHubError(WandownError):
    """The hub folder or a hub file cannot be used as asked."""


@dataclass(frozen=True)
class Wanted:
    """A file Wan2GP needs, as the Hub describes it: its size and at least one identity.

    sha256 is the Hub's identity for LFS files, blob_sha1 the git blob sha1 it gives for small
    files kept in git, blake3 an identity recorded by other tools. repo and path (the file's
    place in the Hub repository) only serve find_in_hf_cache; they never prove a match.
    """

    size: int
    sha256: str | None = None
    blob_sha1: str | None = None
    repo: str | None = None
    path: str | None = None
    blake3: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 0:
            raise ModelHubError(
                f"wanted file size must be a whole number of bytes, not {self.size!r}"
            )
        for kind in (SHA256, BLOB_SHA1, BLAKE3):
            value = getattr(self, kind)
            if value is None:
                continue
            normal = str(value).strip().lower()
            if not _HEX[kind].fullmatch(normal):
                raise ModelHubError(
                    f"wanted {kind} {value!r} is not a hex digest of the right length"
                )
            object.__setattr__(self, kind, normal)

    def proven_by(self, digests: dict[str, str]) -> bool:
        """Return True when one of digests is this file's identity."""
        return any(
            getattr(self, kind) is not None and digests.get(kind) == getattr(self, kind)
            for kind in (SHA256, BLOB_SHA1, BLAKE3)
        )

    def proof_kind(self) -> str | None:
        """Return the one digest kind worth computing to prove this file."""
        return next((k for k in (SHA256, BLOB_SHA1, BLAKE3) if getattr(self, k) is not None), None)


class HubIndex:
    """The files of one hub (stat facts), its Hugging Face caches and InvokeAI installs.

    One worker thread at a time matches (reads and hashes); other threads may ask the cheap
    questions (candidates, known_digests, link_target) meanwhile.
    """

    def __init__(
        self,
        hub_dir: str,
        sidecar_path: Path,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        self.hub_dir = hub_dir
        self.notices: list[str] = []
        self._notice_callback = notice
        self.sidecar = HashSidecar(sidecar_path, hub_dir, self.notice)
        self.files: dict[str, FileStat] = {}
        self.by_size: dict[int, list[str]] = {}
        # What a HF blob's name claims it is: a lead to read first, never proof (a blob can rot,
        # or an editor can write through a snapshot link, and keep its name).
        self.known: dict[str, dict[str, str]] = {}
        self.link_targets: dict[str, str] = {}  # key -> real path, for hub entries that are links
        self.hf_repos: list[HfCacheRepo] = []
        # The real paths of the hub and of every folder a followed folder link led to: files
        # there are hub files, so nothing may be written there either.
        self.real_roots: list[str] = [os.path.realpath(hub_dir)]
        self.folder_ids: frozenset[tuple[int, int]] = frozenset()  # every folder scanned
        self.invokeai_roots: list[str] = []
        self.dir_count = 0
        self.broken_links = 0
        self.skipped_places = 0
        self._invokeai: dict[str, InvokeAIRecord] | None = None
        self._invokeai_lock = threading.Lock()
        self._computed: dict[FileStat, dict[str, str]] = {}  # this run's digests by file identity
        self._blake3 = digests.load_blake3()
        self._blake3_notice_given = False

    # -- facts -------------------------------------------------------------------------------

    def notice(self, message: str) -> None:
        """Record a notice for the user and pass it on."""
        self.notices.append(message)
        if self._notice_callback is not None:
            self._notice_callback(message)

    @property
    def file_count(self) -> int:
        return len(self.files)

    @property
    def hf_blob_count(self) -> int:
        return sum(len(repo.blobs) for repo in self.hf_repos)

    @property
    def hf_repo_count(self) -> int:
        return len(self.hf_repos)

    @property
    def blake3_available(self) -> bool:
        return self._blake3 is not None

    def add_file(
        self,
        key: str,
        stat: FileStat,
        *,
        known: dict[str, str] | None = None,
        link_target: str | None = None,
    ) -> None:
        """Add one hub file (keyed by its path inside the hub) to the index."""
        if key not in self.files:
            self.by_size.setdefault(stat.size, []).append(key)
        self.files[key] = stat
        if known:
            self.known[key] = known
        if link_target is not None:
            self.link_targets[key] = link_target

    def path_of(self, key: str) -> Path:
        """Return the absolute path of a hub file as found below the hub folder."""
        return Path(os.path.join(self.hub_dir, key))

    def link_target(self, key: str) -> Path:
        """Return what a link to this hub file should point at.

        A hub entry that is itself a link is resolved, so Wan2GP's link is one hop and does not
        depend on the hub's own links staying put. HF cache files are keyed by their blob path:
        see link.py for why the blob, not the snapshot path, is the target.
        """
        return Path(self.link_targets.get(key) or self.path_of(key))

    def reaches_into(self, key: str, folders: Sequence[str]) -> bool:
        """Tell whether a hub entry is, links resolved, a file in one of folders, not the hub's."""
        real = os.path.realpath(self.link_target(key))
        by_path = fsutil.is_inside_any(real, folders)
        if fsutil.is_inside(real, self.hub_dir):
            # The hub's own file, unless a Wan2GP folder is bind-mounted into the hub: no path
            # relates the two, but the folders' identity does.
            return not by_path and fsutil.is_within_by_identity(real, folders)
        return by_path or fsutil.is_within_by_identity(real, folders)

    # -- InvokeAI leads ----------------------------------------------------------------------

    def invokeai_records(self) -> dict[str, InvokeAIRecord]:
        """Return InvokeAI's single-file records by absolute path, reading the databases once."""
        with self._invokeai_lock:  # candidates() may be asked from two threads at once
            if self._invokeai is None:
                records = {}
                for root in self.invokeai_roots:
                    for record in read_records(root, self.notice):
                        records[record.path] = record
                self._add_outside_leads(records)
                self._invokeai = records
        return self._invokeai

    def _add_outside_leads(self, records: dict[str, InvokeAIRecord]) -> None:
        """Index files InvokeAI records outside the hub (models it uses in place)."""
        inside = self.hub_dir.rstrip(os.sep) + os.sep
        for path, record in records.items():
            if path.startswith(inside) or path in self.files:
                continue
            try:
                stat = FileStat.of(os.stat(path))
            except OSError:
                continue
            self.add_file(path, stat, link_target=os.path.realpath(path))
            if record.file_size is not None and record.file_size != stat.size:
                self.notice(f"{path} is {stat.size} bytes but InvokeAI recorded {record.file_size}")

    def _is_lead(self, key: str, group: list[Wanted]) -> bool:
        """Return True when a HF blob's name or InvokeAI's record of this file names one of group.

        A lead is only read first: a name, a recorded hash or source may be stale, so it proves
        nothing.
        """
        claimed = self.known.get(key, {})
        if any(getattr(item, kind) == value for item in group for kind, value in claimed.items()):
            return True
        record = self._record_for(key)
        if record is None:
            return False
        hash_kind = record.hash_algorithm if record.hash_algorithm in (SHA256, BLAKE3) else None
        for item in group:
            if hash_kind and record.hash_hex and getattr(item, hash_kind) == record.hash_hex:
                return True
            source, name = record.source or "", (item.path or "").rsplit("/", 1)[-1]
            if item.repo and name and item.repo in source and name in source:
                return True
        return False

    def _record_for(self, key: str) -> InvokeAIRecord | None:
        if not self._invokeai:
            return None
        return self._invokeai.get(str(self.path_of(key)))

    # -- digests -----------------------------------------------------------------------------

    def known_digests(self, key: str) -> dict[str, str]:
        """Return the digests of a hub file that need no reading: the sidecar's and this run's.

        A blob's name is not among them: only the bytes prove what a file holds. The sidecar
        remembers a blob's digests by its identity, so it is read once, not on every run.
        """
        stat = self.files[key]
        return {**self.sidecar.digests(key, stat), **self._computed.get(stat, {})}

    def digests(
        self,
        key: str,
        kinds: Iterable[str],
        *,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, str]:
        """Return the digests of a hub file, reading it once if a wanted kind is unknown."""
        kinds = set(kinds)
        if self._blake3 is None:
            kinds.discard(BLAKE3)
        known = self.known_digests(key)
        if kinds.issubset(known):
            return known
        stat = self.files[key]
        if self._blake3 is None:
            self._blake3_missing()
        read_kinds = kinds | {SHA256, BLAKE3}
        if stat.size <= SMALL_FILE_LIMIT:
            read_kinds |= {BLOB_SHA1}
        path = self.path_of(key)
        try:
            fresh = digests.hash_file(
                path, read_kinds, progress=progress, cancel=cancel, blake3_factory=self._blake3
            )
            after = FileStat.of(os.stat(path))
        except OSError as exc:
            self.notice(f"cannot read hub file {path}: {exc.strerror or exc}")
            return known
        if after != stat or not fresh:
            self.notice(f"hub file {path} changed while it was hashed; not using it this run")
            return known
        self._computed[stat] = {**self._computed.get(stat, {}), **fresh}
        self.sidecar.record(key, stat, fresh)
        self._check_against_invokeai(key, fresh)
        self._check_against_name(key, fresh)
        return {**known, **fresh}

    def _check_against_name(self, key: str, fresh: dict[str, str]) -> None:
        claimed = self.known.get(key, {})
        if any(kind in fresh and fresh[kind] != value for kind, value in claimed.items()):
            self.notice(
                f"hub file {self.path_of(key)} does not hold what its Hugging Face blob name says: "
                "it is damaged or was written through a snapshot link; not using it"
            )

    def _check_against_invokeai(self, key: str, fresh: dict[str, str]) -> None:
        record = self._record_for(key)
        if record is None or record.hash_hex is None or record.hash_algorithm not in fresh:
            return
        if fresh[record.hash_algorithm] != record.hash_hex:
            self.notice(
                f"hub file {self.path_of(key)} does not match the {record.hash_algorithm} InvokeAI "
                "recorded for it: it is damaged or was replaced"
            )

    def _blake3_missing(self) -> None:
        if not self._blake3_notice_given:
            self._blake3_notice_given = True
            self.notice("the blake3 package is not installed: BLAKE3 checks are skipped")

    # -- matching ----------------------------------------------------------------------------

    def has_size(self, size: int) -> bool:
        """Tell whether any hub file has exactly this size (see candidates)."""
        return bool(self._sized(size))

    def candidates(self, size: int, outside: Sequence[str] = ()) -> list[str]:
        """Return the hub files of exactly this size, HF blobs (named leads) and real files first.

        outside lists folders whose files are not hub files for this question: a hub may reach
        the very folder being deduped through a folder link. The hub's own files always count.
        """
        keys = self._sized(size)
        if outside:
            keys = [k for k in keys if not self.reaches_into(k, outside)]
        return sorted(keys, key=lambda k: (k not in self.known, k in self.link_targets, k))

    def _sized(self, size: int) -> list[str]:
        # The first look reads the InvokeAI databases (if any), so files InvokeAI uses in place
        # outside the hub count too.
        if self._invokeai is None and self.invokeai_roots:
            self.invokeai_records()
        return self.by_size.get(size, [])

    def match(
        self,
        wanted: Iterable[Wanted],
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[Wanted, Path]:
        """Return {wanted file: hub file to link} for every wanted file the hub proves to hold.

        Only hub files of the wanted size are considered; a file's remembered digests are used
        before it is read, and reading stops for a size once all its wanted files are found.
        New digests are saved to the sidecar, also when cancel stops the work early.
        """
        pending = self._by_size(wanted)
        found = self._take_known(pending)
        try:
            for size, group in pending.items():
                if group:
                    self._match_size(self.candidates(size), group, found, progress, cancel)
        except digests.HashingCancelled:
            pass
        finally:
            self.save()
        return found

    def proven(self, wanted: Iterable[Wanted]) -> dict[Wanted, Path]:
        """Return what match would find from remembered digests alone, reading no file."""
        return self._take_known(self._by_size(wanted))

    def _by_size(self, wanted: Iterable[Wanted]) -> dict[int, list[Wanted]]:
        pending: dict[int, list[Wanted]] = {}
        for item in dict.fromkeys(wanted):
            if item.proof_kind() == BLAKE3 and self._blake3 is None:
                self._blake3_missing()
            elif item.proof_kind() is not None:
                pending.setdefault(item.size, []).append(item)
        return pending

    def _take_known(self, pending: dict[int, list[Wanted]]) -> dict[Wanted, Path]:
        """Take what is proven without reading; pending keeps only what is still unproven."""
        found: dict[Wanted, Path] = {}
        for size, group in pending.items():
            for key in self.candidates(size):
                self._take_proven(key, self.known_digests(key), group, found)
        return found

    def _match_size(
        self,
        candidates: list[str],
        group: list[Wanted],
        found: dict[Wanted, Path],
        progress: Progress | None,
        cancel: threading.Event | None,
    ) -> None:
        for key in sorted(candidates, key=lambda k: not self._is_lead(k, group)):
            if not group:
                return
            kinds = {item.proof_kind() for item in group}
            digests = self.digests(key, kinds, progress=progress, cancel=cancel)  # type: ignore[arg-type]
            self._take_proven(key, digests, group, found)

    def _take_proven(
        self, key: str, digests: dict[str, str], group: list[Wanted], found: dict[Wanted, Path]
    ) -> None:
        for item in [item for item in group if item.proven_by(digests)]:
            found[item] = self.link_target(key)
            group.remove(item)

    def save(self) -> None:
        """Save new digests; drop entries of vanished files when the whole hub was readable."""
        if self.skipped_places:
            self.sidecar.save()  # part of the hub was unreadable: its entries may still be good
            return
        files = self.files
        # Absolute keys are files outside the hub (InvokeAI leads); stat checks them on use.
        self.sidecar.save(keep=lambda key: key in files or os.path.isabs(key))

    # -- offline help ------------------------------------------------------------------------

    def find_in_hf_cache(
        self, repo: str, path: str, revision: str = "main"
    ) -> tuple[Path, str] | None:
        """Return (hub file, sha256) for repo's file at path and revision in a HF cache in the hub.

        For use without Hub metadata: the same repo, revision and path in a cache is the file
        huggingface_hub would use offline, but only if the blob holds what its name says (its
        sha256, or the git sha1 for a small file kept in git), so the blob is read once (the
        sidecar keeps its digests, and save() writes them).
        """
        path = path.strip("/")
        for hf_repo in self.hf_repos:
            if hf_repo.repo_type != "models" or hf_repo.repo_id != repo:
                continue
            commit = hf_repo.commit_for(revision)
            if commit is None:
                continue
            blob = hf_repo.snapshots[commit].get(path)
            key = hf_repo.blobs.get(blob) if blob else None
            if blob is None or key is None:
                continue
            kind = SHA256 if digests.is_sha256(blob) else BLOB_SHA1
            found = self.digests(key, {kind, SHA256})
            if found.get(kind) == blob and SHA256 in found:
                return self.link_target(key), found[SHA256]
        return None
