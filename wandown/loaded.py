"""What one load knows: the catalog, the Hub's facts, what is on disk, the hub index.

A Loaded value is never changed: the session publishes one and swaps in a new one (after a
reload, or when a file lands), so a worker that took it reads one consistent state with no lock.
The questions here only read it (and stat, for a destination's safety); the plan decides.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from wandown import destination, plan
from wandown.catalog import Catalog, FileRecord, Presence, presence_of
from wandown.gpu import GpuAnswer
from wandown.hub import HubSet, Wanted
from wandown.remote import FileRef, RemoteFile
from wandown.state import FileView
from wandown.status import Status

NO_METADATA_YET = "no Hub metadata yet"


def ref_of(record: FileRecord) -> FileRef | None:
    """Return the Hub file a record names, or None for a record from another server."""
    if record.repo is None or record.revision is None or record.path is None:
        return None
    return FileRef(record.repo, record.revision, record.path)


def wanted_of(remote: RemoteFile | None) -> Wanted | None:
    """Describe a file for the hub matcher: only Hub identities prove a match."""
    if remote is None:
        return None
    return Wanted(
        size=remote.size,
        sha256=remote.sha256,
        blob_sha1=remote.blob_sha1,
        repo=remote.repo,
        path=remote.path,
    )


@dataclass(frozen=True)
class Loaded:
    """The catalog and the facts of one load, keyed by destination."""

    catalog: Catalog
    remote: Mapping[str, RemoteFile]
    problems: Mapping[str, str]
    presence: Mapping[str, Presence]
    hub: HubSet | None = None
    hub_dirs: tuple[Path, ...] = ()
    offline: bool = False
    gpu: GpuAnswer | None = None  # the bf16 answer the catalog was built with

    def status(self, dest: str) -> Status:
        """Return whether dest is on disk (exists, linked or missing) as this load saw it."""
        return self.presence.get(dest, Presence()).status

    def is_missing(self, record: FileRecord) -> bool:
        return self.status(record.dest) is Status.MISSING

    def restat(self, dests: Iterable[str]) -> Loaded:
        """Return a copy that looked at dests on disk again (a file landed or was linked)."""
        records = [r for r in map(self.catalog.record, dests) if r is not None]
        fresh = presence_of(self.catalog, records)
        return dataclasses.replace(self, presence={**self.presence, **fresh})

    def place(self, dest: str) -> Path:
        """Return the absolute place a destination is written to (the first checkpoint root)."""
        return self.catalog.root / dest

    def wanted(self, dest: str) -> Wanted | None:
        return wanted_of(self.remote.get(dest))

    # -- the views' projection -----------------------------------------------------------------

    def view(self, record: FileRecord, linkable: bool = False) -> FileView:
        """Return what the views first show of a record (linkable: the hub proves it)."""
        presence = self.presence.get(record.dest, Presence())
        remote = self.remote.get(record.dest)
        problem = self.problems.get(record.dest)
        message = ""
        missing = presence.status is Status.MISSING
        if missing and problem:
            message = problem
        elif missing and remote is None and record.repo is not None:
            message = "offline, and no cached Hub metadata" if self.offline else NO_METADATA_YET
        linked = presence.status is Status.LINKED and presence.found_at is not None
        return FileView(
            dest=record.dest,
            file_name=record.file_name,
            folder=record.folder,
            role=record.role,
            needed_by=tuple(sorted(record.needed_by)),
            listed_by=tuple(sorted(record.listed_by)),
            url=record.url,
            size=remote.size if remote is not None else None,
            status=presence.status,
            message=message,
            link_source=_link_text(presence.found_at) if linked else None,
            linkable=linkable and missing,
            feature=record.feature,
        )

    def views(self) -> dict[str, FileView]:
        linkable = self.linkable()
        return {r.dest: self.view(r, r.dest in linkable) for r in self.catalog.records}

    def model_names(self) -> dict[str, str]:
        return {model_id: info.name for model_id, info in self.catalog.models.items()}

    def model_families(self) -> dict[str, str]:
        """Return each model's family (its architecture) where the definition names one."""
        models = self.catalog.models.items()
        return {model_id: info.architecture for model_id, info in models if info.architecture}

    # -- questions the plan needs answered -----------------------------------------------------

    def linkable(self, records: Iterable[FileRecord] | None = None) -> dict[str, Path]:
        """Return missing files (of records, else all) the hub proves without reading anything."""
        if self.hub is None:
            return {}
        wanted: dict[Wanted, list[str]] = {}
        for record in self.catalog.records if records is None else records:
            item = self.wanted(record.dest)
            if item is not None and self.is_missing(record):
                wanted.setdefault(item, []).append(record.dest)
        proven = self.hub.proven(wanted)
        return {dest: path for item, path in proven.items() for dest in wanted[item]}

    def hub_may_hold(self, dest: str) -> bool:
        """Tell whether some hub file has this file's size (so hashing might prove it)."""
        wanted = self.wanted(dest)
        return self.hub is not None and wanted is not None and self.hub.has_size(wanted.size)

    def hub_folders(self) -> list[Path]:
        """Return the folders wandown never writes into: the hub, its HF caches, where links led."""
        if not self.hub_dirs:
            return []
        folders = list(self.hub_dirs)
        if self.hub is not None:
            folders += [Path(repo.folder) for repo in self.hub.hf_repos]
            folders += [Path(root) for root in self.hub.real_roots]  # where folder links led
        return folders

    def hub_folder_ids(self) -> frozenset[tuple[int, int]]:
        """Return the identity of every folder the hub scan entered (bind mounts show here)."""
        return self.hub.folder_ids if self.hub is not None else frozenset()

    def refusal(self, record: FileRecord) -> str | None:
        """Say why a missing file's destination must not be written, looking at it now."""
        if not self.is_missing(record):
            return None
        return destination.problem(
            self.place(record.dest), record.dest, self.hub_folders(), self.hub_folder_ids()
        )

    def decide(self, record: FileRecord, proven_in_hub: Path | None) -> plan.Step:
        """Decide one file's fate with what this load knows (see plan.decide)."""
        return plan.decide(
            self.status(record.dest),
            self.remote.get(record.dest),
            proven_in_hub,
            self.offline,
            self.problems.get(record.dest),
            refusal=self.refusal(record),
        )


def _link_text(found_at: Path | None) -> str | None:
    """Return where a link found in place points (the hub file), not the link's own path."""
    if found_at is None:
        return None
    try:
        return os.path.join(found_at.parent, os.readlink(found_at))
    except OSError:
        return str(found_at)  # a file found through a folder link, or gone meanwhile
